/**
 * Child process for the durability test: creates classifiers in a loop and prints each id on its own
 * line right after create() returns (= acknowledged). The parent SIGKILLs it mid-stream.
 * Usage: node --import tsx test/storage/store-writer.ts '<StoreLocation JSON>'
 */
import { openStoreDatabase } from '../../src/storage/database.js'
import { ClassifierStore } from '../../src/storage/classifier-store.js'
import { fitProbe } from '../../src/fewshot/classifiers.js'
import { matrixFromRows } from '../../src/fewshot/matrix.js'

const database = await openStoreDatabase(JSON.parse(process.argv[2]))
const store = new ClassifierStore(database.db, database.dialect)
const x = [[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1]]
const names = ['a', 'a', 'b', 'b']
const fit = fitProbe('centroid', matrixFromRows(x), names)
const pin = { model: 'm', sha256: 'c'.repeat(64), pooling: 'mean' as const, normalize: true }
for (let i = 0; ; i++) {
  const c = await store.create({ name: `w${i}`, method: 'centroid', pin, keepImages: false, dim: 3, refittable: true }, fit,
    x.map((e, j) => ({ label: names[j], embedding: e })), { maxClassifiers: 1_000_000 })
  process.stdout.write(`${c.id}\n`)
}
