// `--export-features DIR`: the SVM benchmark's inputs as .npy files, in the layout scripts/reference/
// voc_svm_sklearn.py (and any NumPy tool) reads.
import Foundation

/// Writes `DIR/classes.txt`, `trainval_labels.npy` and `test_labels.npy` (int32 [images, classes]; 1 / 0 / −1),
/// `trainval_<layer>.npy` and `test_<layer>.npy` (float32 [images, dim], not normalised) for each layer, and, with
/// a low-shot draw, `low_shot/train_targets_sample{s}_k{k}.npy` (the FAIR benchmark's format).
public func exportSVMInputs(to directory: URL, layers: [SVMLayerData], lowShot: LowShotDraw? = nil) throws {
  guard let first = layers.first else { return }
  let fileManager = FileManager.default
  do {
    try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
    try Data((first.trainLabels.classes.joined(separator: "\n") + "\n").utf8)
      .write(to: directory.appendingPathComponent("classes.txt"), options: .atomic)
  } catch {
    throw NPYError.unreadable(path: directory.path, reason: "cannot write: \(error.localizedDescription)")
  }
  let classes = first.trainLabels.classes.count
  try NPY.write(NPYArray(shape: [first.trainLabels.images, classes], data: .int32(first.trainLabels.labels)),
                to: directory.appendingPathComponent("trainval_labels.npy"))
  try NPY.write(NPYArray(shape: [first.testLabels.images, classes], data: .int32(first.testLabels.labels)),
                to: directory.appendingPathComponent("test_labels.npy"))
  for layer in layers {
    try NPY.write(layer.train, to: directory.appendingPathComponent("trainval_\(layer.layer).npy"))
    try NPY.write(layer.test, to: directory.appendingPathComponent("test_\(layer.layer).npy"))
  }
  if let lowShot {
    let folder = directory.appendingPathComponent("low_shot")
    do { try fileManager.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
      throw NPYError.unreadable(path: folder.path, reason: "cannot create: \(error.localizedDescription)")
    }
    for sample in lowShot.samples {
      try NPY.write(NPYArray(shape: [first.trainLabels.images, classes], data: .int32(sample.targets)),
                    to: folder.appendingPathComponent("train_targets_sample\(sample.sample)_k\(sample.k).npy"))
    }
  }
}
