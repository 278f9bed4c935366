package classify

// Ranking helpers for scoring a Result against a true label, in the order TopK lists the classes: most
// probable first, ties to the lower index.

// Rank is the 0-based rank of class label in probs (0: TopK lists it first), ties broken by lower index first
// as TopK orders them.
func Rank(probs []float64, label int) int {
	rank := 0
	for k, p := range probs {
		if p > probs[label] || (p == probs[label] && k < label) {
			rank++
		}
	}
	return rank
}

// ActionRank is the 0-based rank of the pair (verb, noun) among all verb×noun pairs scored by
// p(verb)·p(noun), the score of the EPIC actions (ties: lower verb, then lower noun first).
func ActionRank(pv, pn []float64, verb, noun int) int {
	want := pv[verb] * pn[noun]
	rank := 0
	for v, a := range pv {
		for n, b := range pn {
			s := a * b
			if s > want || (s == want && (v < verb || (v == verb && n < noun))) {
				rank++
			}
		}
	}
	return rank
}

// FactorHits scores the top-1 class of probs (ties to the lower index, as Rank) against label, split as
// label = what·h + how: whether the predicted what and the predicted how are right (1) or not (0).
func FactorHits(probs []float64, label, h int) (what, how int) {
	pred := 0
	for k, p := range probs {
		if p > probs[pred] {
			pred = k
		}
	}
	if pred/h == label/h {
		what = 1
	}
	if pred%h == label%h {
		how = 1
	}
	return what, how
}
