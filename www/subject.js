// What a model calls its images, for the page's and the widget's words: the card's `subject`
// ({one: 'digit', many: 'digits'}, {one: 'emoji', many: 'emoji'}), read here once so that no
// sentence of the page or the widget names a model's images itself. A card without one draws
// "images" (the library's default, src/store/card.rs Subject).

const FALLBACK = Object.freeze({ one: 'image', many: 'images' });

/** The card's names for one image and for several: {one, many}. */
export function subjectOf(card) {
  const s = card?.subject;
  return s?.one && s?.many ? { one: s.one, many: s.many } : FALLBACK;
}

/** "1 digit", "16 digits", "16 emoji". */
export function counted(n, card) {
  const s = subjectOf(card);
  return `${n} ${n === 1 ? s.one : s.many}`;
}

/** The word with its first letter in capitals (a heading's or a label's first word). */
export function capitalised(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Fills every element under `root` marked `data-subject` with the card's word: "one" or "many",
 * or "One" / "Many" for the word capitalised. */
export function nameSubject(root, card) {
  const s = subjectOf(card);
  for (const node of root.querySelectorAll('[data-subject]')) {
    const key = node.dataset.subject;
    const word = s[key.toLowerCase()];
    if (word) node.textContent = key === key.toLowerCase() ? word : capitalised(word);
  }
}
