package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// pct returns the q quantile (0..1) of ds by the nearest-rank method: the
// smallest sample with at least q of the samples at or below it.
func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ms formats d in milliseconds with three significant decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// verdict says whether a target was met.
func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// failSummary lists the failures of r by kind, or "0".
func failSummary(r *loadResult) string {
	if r.fail == 0 {
		return "0"
	}
	kinds := make([]string, 0, len(r.fails))
	for k, v := range r.fails {
		kinds = append(kinds, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d (%s)", r.fail, strings.Join(kinds, "; "))
}

// ratio returns a/b, or NaN when b is zero.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
