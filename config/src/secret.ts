/**
 * How strong a deployment secret looks. A string's entropy cannot be measured, only bounded
 * from what it is made of: this estimate is its length times the bits per character of the
 * alphabet it draws from (hex 4, base64 6, otherwise the character classes it uses), and
 * nothing for a string of fewer than 8 distinct characters ('x' × 64 is not a secret). It
 * refuses the usual mistakes (short, "changeme", repeated characters) and accepts what
 * `openssl rand -hex 32` or `openssl rand -base64 32` prints; it cannot tell a random string
 * from a patterned one of the same alphabet.
 */
export const MIN_SECRET_BITS = 256;

export function secretEntropyBits(secret: string): number {
  const chars = [...secret];
  if (new Set(chars).size < 8) return 0;
  let perChar: number;
  if (/^[0-9a-f]+$/.test(secret) || /^[0-9A-F]+$/.test(secret)) perChar = 4;
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(secret)) perChar = 6;
  else {
    let alphabet = 0;
    if (/[a-z]/.test(secret)) alphabet += 26;
    if (/[A-Z]/.test(secret)) alphabet += 26;
    if (/[0-9]/.test(secret)) alphabet += 10;
    if (/[^A-Za-z0-9]/.test(secret)) alphabet += 33;
    perChar = Math.log2(alphabet);
  }
  const length = chars.filter((c) => c !== '=').length;
  return Math.floor(length * perChar);
}
