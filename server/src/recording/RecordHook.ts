/** What a broadcaster's "record this" (WHIP ?record=1, RTP ingest `record: true`) does: the answer header's value. */
export type RecordHook = (streamId: string, owner: string) => Promise<'started' | 'disabled' | 'failed'>;
