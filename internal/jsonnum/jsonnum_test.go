package jsonnum

import (
	"encoding/json"
	"math/big"
	"testing"
)

func TestValue(t *testing.T) {
	for lit, want := range map[string]struct {
		whole           uint64
		frac, neg, huge bool
	}{
		"0": {}, "0.0": {}, "0e5": {}, "150": {whole: 150}, "150.0": {whole: 150}, "1.5e2": {whole: 150},
		"1.5E+2": {whole: 150}, "15000e-2": {whole: 150}, "150.5": {whole: 150, frac: true}, "0.001": {frac: true},
		"1e-400": {frac: true}, "-3": {neg: true}, "-0": {neg: true},
		"9999999999999999999": {whole: 9999999999999999999}, "10000000000000000000": {huge: true},
		"1e19": {huge: true}, "1e99999999999": {huge: true}, "18446744073709551615": {huge: true},
		"1.8e18": {whole: 1800000000000000000},
	} {
		w, f, n, h := Value(lit)
		if w != want.whole || f != want.frac || n != want.neg || h != want.huge {
			t.Errorf("Value(%q) = %d %v %v %v, want %+v", lit, w, f, n, h, want)
		}
		if w2, f2, n2, h2 := Value([]byte(lit)); w2 != w || f2 != f || n2 != n || h2 != h {
			t.Errorf("Value([]byte(%q)) differs from Value(string)", lit)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Value("1.5e2") }); n != 0 {
		t.Errorf("Value allocates %v times", n)
	}
}

// FuzzValue holds Value to exact arithmetic (math/big) on every literal a
// JSON decoder accepts.
func FuzzValue(f *testing.F) {
	for _, s := range []string{"0", "150.0", "1.5e2", "-1", "1e-400", "99999999999999999999", "0.5", "123.456e1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		var num json.Number
		if json.Unmarshal([]byte(lit), &num) != nil || string(num) != lit {
			return
		}
		whole, frac, neg, huge := Value(lit)
		if lit[0] == '-' {
			if !neg || whole != 0 || frac || huge {
				t.Fatalf("%q: %d %v %v %v", lit, whole, frac, neg, huge)
			}
			return
		}
		mant, exp := lit, int64(0)
		for i := 0; i < len(lit); i++ {
			if lit[i] == 'e' || lit[i] == 'E' {
				mant = lit[:i]
				e, ok := new(big.Int).SetString(lit[i+1:], 10)
				if !ok || !e.IsInt64() || e.Int64() > 1000 || e.Int64() < -1000 {
					return // too far for exact arithmetic here
				}
				exp = e.Int64()
				break
			}
		}
		r, ok := new(big.Rat).SetString(mant)
		if !ok {
			t.Fatalf("%q: big.Rat refuses its mantissa", lit)
		}
		pow := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(abs(exp)), nil))
		if exp >= 0 {
			r.Mul(r, pow)
		} else {
			r.Quo(r, pow)
		}
		limit := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(19), nil))
		if r.Cmp(limit) >= 0 {
			if !huge || whole != 0 || neg {
				t.Fatalf("%q (≥ 10^19): %d %v %v %v", lit, whole, frac, neg, huge)
			}
			return
		}
		q := new(big.Int).Quo(r.Num(), r.Denom())
		hasFrac := new(big.Int).Mod(r.Num(), r.Denom()).Sign() != 0
		if huge || neg || frac != hasFrac || !q.IsUint64() || whole != q.Uint64() {
			t.Fatalf("%q: %d %v %v %v, want %s frac %v", lit, whole, frac, neg, huge, q, hasFrac)
		}
	})
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
