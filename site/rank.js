// rank.js owns the ranking rule, the one copy of classify.TopK in the page: the pool's merged result, the live
// camera mode and the backend comparison (top-1 agreement) all rank classes with it.

// topK is classify.TopK: the k most probable classes, most probable first, ties to the lower index.
export function topK(probs, labels, k) {
  const idx = Array.from(probs, (_, i) => i);
  idx.sort((a, b) => (probs[b] - probs[a]) || (a - b));
  return idx.slice(0, k).map((i) => ({ index: i, label: i < labels.length ? labels[i] : String(i), prob: probs[i] }));
}

// argmax is the index topK ranks first.
export function argmax(xs) {
  return topK(xs, [], 1)[0].index;
}

// topActions is classify's EPIC verb+noun ranking by p(verb)·p(noun) over the top-k of each head.
export function topActions(verb, noun, verbLabels, nounLabels, k) {
  const acts = [];
  for (const v of topK(verb, verbLabels, k)) for (const n of topK(noun, nounLabels, k)) acts.push({ verb: v, noun: n, prob: v.prob * n.prob });
  acts.sort((a, b) => b.prob - a.prob); // stable
  return acts.slice(0, k);
}
