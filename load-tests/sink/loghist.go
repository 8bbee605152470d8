package main

import (
	"math"
	"sort"
)

// The same logarithmic histogram as load-tests/src/LogHistogram.ts (same buckets), so that the
// load test merges a sink's histograms with its own.
const (
	histFloor     = 0.01
	histGrowth    = 1.02
	histMaxBucket = 2000
)

var histLogGrowth = math.Log(histGrowth)

type logHist struct {
	buckets map[int]int
	count   int
	sum     float64
	min     float64
	max     float64
}

// logHistJSON is LogHistogramJSON.
type logHistJSON struct {
	Buckets [][2]float64 `json:"buckets"`
	Count   int          `json:"count"`
	Sum     float64      `json:"sum"`
	Min     float64      `json:"min"`
	Max     float64      `json:"max"`
}

// summary is stats.ts's Summary.
type summary struct {
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
}

func newLogHist() *logHist {
	return &logHist{buckets: map[int]int{}, min: math.Inf(1), max: math.Inf(-1)}
}

func bucketOf(v float64) int {
	if v <= histFloor {
		return 0
	}
	b := 1 + int(math.Floor(math.Log(v/histFloor)/histLogGrowth))
	if b > histMaxBucket {
		return histMaxBucket
	}
	return b
}

func midpointOf(b int) float64 {
	if b <= 0 {
		return histFloor / 2
	}
	return histFloor * math.Pow(histGrowth, float64(b)-0.5)
}

func (h *logHist) add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if v < 0 {
		v = 0
	}
	h.buckets[bucketOf(v)]++
	h.count++
	h.sum += v
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *logHist) merge(o *logHist) {
	if o.count == 0 {
		return
	}
	for b, c := range o.buckets {
		h.buckets[b] += c
	}
	h.count += o.count
	h.sum += o.sum
	h.min = math.Min(h.min, o.min)
	h.max = math.Max(h.max, o.max)
}

func (h *logHist) reset() {
	for b := range h.buckets {
		delete(h.buckets, b)
	}
	h.count, h.sum, h.min, h.max = 0, 0, math.Inf(1), math.Inf(-1)
}

func (h *logHist) sortedBuckets() []int {
	keys := make([]int, 0, len(h.buckets))
	for b := range h.buckets {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	return keys
}

// percentile as LogHistogram.percentile: the bucket's midpoint, clamped to the exact extremes.
func (h *logHist) percentile(p float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return h.min
	}
	if p >= 100 {
		return h.max
	}
	rank := int(math.Ceil(p / 100 * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	seen := 0
	for _, b := range h.sortedBuckets() {
		seen += h.buckets[b]
		if seen >= rank {
			return math.Min(h.max, math.Max(h.min, midpointOf(b)))
		}
	}
	return h.max
}

func (h *logHist) summary() *summary {
	if h.count == 0 {
		return nil
	}
	return &summary{Count: h.count, Min: h.min, Max: h.max, Mean: h.sum / float64(h.count),
		P50: h.percentile(50), P95: h.percentile(95), P99: h.percentile(99)}
}

func (h *logHist) toJSON() logHistJSON {
	out := logHistJSON{Buckets: [][2]float64{}, Count: h.count, Sum: h.sum}
	if h.count > 0 {
		out.Min, out.Max = h.min, h.max
	}
	for _, b := range h.sortedBuckets() {
		out.Buckets = append(out.Buckets, [2]float64{float64(b), float64(h.buckets[b])})
	}
	return out
}
