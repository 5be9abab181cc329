// Package jsonnum reads JSON number literals as JSON Schema counts them:
// an "integer" is any number whose value is whole (150, 150.0 and 1.5e2
// alike). The one reader behind converse's context.max_tokens and the
// gateway's meta.tokens_used, so that a request and an answer agree on
// what a count is. It does not allocate (both run on every converse call).
package jsonnum

// Value reads lit, a JSON number literal as a JSON decoder accepted it
// (not re-checked), as its integer part and whether a non-zero fraction
// follows it. A negative literal reads as zero with neg set; a value of
// 10^19 or more reads as huge (whole is then 0). The exponent saturates
// far beyond any body's digits, so no weight overflows.
func Value[T ~string | ~[]byte](lit T) (whole uint64, frac, neg, huge bool) {
	if len(lit) == 0 {
		return 0, false, false, false
	}
	if lit[0] == '-' {
		return 0, false, true, false
	}
	// The mantissa is lit[:mEnd], its '.' (if any) before point; a digit
	// at p weighs 10^weight(p).
	mEnd, point, exp := len(lit), -1, int64(0)
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c == '.' {
			point = i
		} else if c == 'e' || c == 'E' {
			mEnd = i
			neg, j := false, i+1
			if j < len(lit) && (lit[j] == '+' || lit[j] == '-') {
				neg = lit[j] == '-'
				j++
			}
			for ; j < len(lit); j++ {
				if exp < 1<<40 {
					exp = exp*10 + int64(lit[j]-'0')
				}
			}
			if neg {
				exp = -exp
			}
			break
		}
	}
	if point < 0 {
		point = mEnd
	}
	weight := func(p int) int64 {
		if p < point {
			return int64(point-1-p) + exp
		}
		return int64(point-p) + exp
	}
	first, last := -1, -1 // the first and last non-zero digits
	for p := 0; p < mEnd; p++ {
		if c := lit[p]; c != '.' && c != '0' {
			if first < 0 {
				first = p
			}
			last = p
		}
	}
	switch {
	case first < 0:
		return 0, false, false, false
	case weight(first) >= 19: // at least 10^19
		return 0, false, false, true
	case weight(first) < 0: // between 0 and 1
		return 0, true, false, false
	}
	// At most 19 whole digits: below 10^19, which fits a uint64.
	p := first
	for ; p <= last && weight(p) >= 0; p++ {
		if lit[p] != '.' {
			whole = whole*10 + uint64(lit[p]-'0')
		}
	}
	if p <= last {
		return whole, true, false, false
	}
	for w := weight(last); w > 0; w-- {
		whole *= 10
	}
	return whole, false, false, false
}
