// @ts-check
// A drop area around a native file input: dropping, clicking "Choose" and keyboard use (the input
// itself is focusable and labelled) all end in the same callback. Files are not checked here: an
// unreadable file goes to the API, which answers with its own error code for the page to show.

/**
 * @param {HTMLElement} zone the element that receives drops (it holds the input)
 * @param {HTMLInputElement} input type=file
 * @param {(files: File[]) => void} onFiles
 */
export function bindDropZone (zone, input, onFiles) {
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])]
    if (files.length > 0) onFiles(files)
    input.value = '' // choosing the same file again still fires change
  })
  zone.addEventListener('dragover', (event) => {
    event.preventDefault()
    zone.classList.add('drag-over')
  })
  zone.addEventListener('dragleave', () => zone.classList.remove('drag-over'))
  zone.addEventListener('drop', (event) => {
    event.preventDefault()
    zone.classList.remove('drag-over')
    const files = [...(event.dataTransfer?.files ?? [])]
    if (files.length > 0) onFiles(input.multiple ? files : files.slice(0, 1))
  })
}
