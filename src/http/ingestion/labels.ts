/**
 * Class labels are user text that ends up as keys, in exports and on screens: a label is 1 to
 * CLMAE_CLASSIFIER_MAX_LABEL_CHARS Unicode scalar values (code points that are not surrogates), without
 * U+0000. Any string of those is a label, `__proto__` and `constructor` included: nothing keys a plain
 * object by a label (counts are Maps, JSON objects are built with Object.fromEntries).
 */
import { ApiError } from '../../errors.js'

/** with the u flag a surrogate pair is one code point, so only unpaired surrogates match */
const LONE_SURROGATE = /\p{Cs}/u

export function checkLabel (label: string, maxChars: number): void {
  const shown = JSON.stringify(label.length > 80 ? label.slice(0, 80) + '…' : label)
  if (label.length === 0) throw new ApiError('CLASSIFIER_LABEL_INVALID', 'a label is empty', { param: 'label' })
  if (LONE_SURROGATE.test(label)) throw new ApiError('CLASSIFIER_LABEL_INVALID', `label ${shown} contains a lone surrogate (not a Unicode scalar value)`, { param: 'label' })
  if (label.includes('\u0000')) throw new ApiError('CLASSIFIER_LABEL_INVALID', `label ${shown} contains U+0000`, { param: 'label' })
  let chars = 0
  for (const _ of label) chars++ // code points, not UTF-16 units: an emoji is one character
  if (chars > maxChars) {
    throw new ApiError('CLASSIFIER_LABEL_TOO_LONG', `label ${shown} has ${chars} characters; the limit is ${maxChars} (CLMAE_CLASSIFIER_MAX_LABEL_CHARS)`, { param: 'label' })
  }
}

export function checkLabels (labels: Iterable<string>, maxChars: number): void {
  for (const label of labels) checkLabel(label, maxChars)
}
