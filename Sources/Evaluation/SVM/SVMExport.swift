// `--export-features DIR`: the SVM benchmark's inputs as .npy files, in the layout scripts/reference/
// voc_svm_sklearn.py (and any NumPy tool) reads; `--features DIR` reads the same layout back, so features
// extracted by another tool (VISSL's or MMSelfSup's extract scripts, saved with numpy) run through our SVMs.
import Datasets
import Foundation
import Support
import Tensors

/// Writes `DIR/classes.txt`, `trainval_labels.npy` and `test_labels.npy` (int32 [images, classes]; 1 / 0 / −1),
/// `trainval_<layer>.npy` and `test_<layer>.npy` (float32 [images, dim], not normalised) for each layer, and, with
/// a low-shot draw, `low_shot/train_targets_sample{s}_k{k}.npy` (the FAIR benchmark's format).
public func exportSVMInputs(to directory: URL, layers: [SVMLayerData], lowShot: LowShotDraw? = nil) throws {
  guard let first = layers.first else { return }
  let fileManager = FileManager.default
  do {
    try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
    try AtomicFile.write(Data((first.trainLabels.classes.joined(separator: "\n") + "\n").utf8),
                         to: directory.appendingPathComponent("classes.txt"))
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

/// The SVM inputs of a `--features` directory (the layout `exportSVMInputs` writes).
public struct SVMInputFiles: Sendable {
  public var directory: URL
  public var layers: [SVMLayerData]
  /// SHA-256 over classes.txt, the two label files and every feature file read, in that order: the provenance
  /// of the scores (stands for the checkpoint hash and the dataset fingerprint, which a directory does not have).
  public var sha256: String
}

/// Reads `directory`'s classes, labels and the features of `layers` (nil: every `trainval_<layer>.npy` present),
/// checking every shape, dtype and label value against classes.txt; feature values are checked for NaN/∞ when
/// the layer is prepared (the error names the file and row).
public func readSVMInputs(from directory: URL, layers requested: [String]?) throws -> SVMInputFiles {
  let fileManager = FileManager.default
  var isDirectory: ObjCBool = false
  guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
    throw SVMError.badFeatureDirectory(path: directory.path, reason: "no such directory")
  }
  var digest = SHA256()
  func file(_ name: String) throws -> URL {
    let url = directory.appendingPathComponent(name)
    guard fileManager.fileExists(atPath: url.path) else {
      throw SVMError.badFeatureDirectory(path: url.path, reason: "the file does not exist")
    }
    return url
  }
  func hash(_ url: URL) throws {
    guard let handle = try? FileHandle(forReadingFrom: url) else {
      throw SVMError.badFeatureDirectory(path: url.path, reason: "the file cannot be opened")
    }
    defer { try? handle.close() }
    try digest.update(reading: handle)
  }
  let classesURL = try file("classes.txt")
  let classesText = (try? String(contentsOf: classesURL, encoding: .utf8)) ?? ""
  let classes = listLines(classesText).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  guard !classes.isEmpty else {
    throw SVMError.badFeatureDirectory(path: classesURL.path, reason: "no class names (one per line)")
  }
  try hash(classesURL)
  func labels(_ split: String) throws -> SVMLabels {
    let url = try file("\(split)_labels.npy")
    let array = try NPY.read(url)
    guard array.shape.count == 2, array.shape[1] == classes.count, let values = array.integers else {
      throw SVMError.badFeatureDirectory(
        path: url.path, reason: "\(array.data.dtype.rawValue) \(array.shape), expected integers [images, "
          + "\(classes.count)] (one column per line of classes.txt)")
    }
    guard values.allSatisfy({ (-1...1).contains($0) }) else {
      throw SVMError.badFeatureDirectory(path: url.path, reason: "labels outside {1, 0, -1}")
    }
    try hash(url)
    return SVMLabels(classes: classes, labels: values.map { Int32($0) })
  }
  let trainLabels = try labels("trainval")
  let testLabels = try labels("test")
  let names: [String]
  if let requested {
    names = requested
  } else {
    let listing = (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []
    names = listing.filter { $0.hasPrefix("trainval_") && $0.hasSuffix(".npy") && $0 != "trainval_labels.npy" }
      .map { String($0.dropFirst("trainval_".count).dropLast(".npy".count)) }.sorted()
    guard !names.isEmpty else {
      throw SVMError.badFeatureDirectory(path: directory.path, reason: "no trainval_<layer>.npy feature file")
    }
  }
  var layers: [SVMLayerData] = []
  for name in names {
    func features(_ split: String, images: Int) throws -> FeatureMatrix {
      let url = try file("\(split)_\(name).npy")
      let array = try NPY.read(url)
      guard array.shape.count == 2, array.shape[0] == images, array.shape[1] > 0 else {
        throw SVMError.badFeatureDirectory(
          path: url.path, reason: "shape \(array.shape), expected [\(images), dim] (one row per image of "
            + "\(split)_labels.npy)")
      }
      let scalars: [Float]
      switch array.data {
      case .float32(let values): scalars = values
      // float64 files are rounded to float32, the type every feature matrix holds (the reference normalises in
      // float64 from whatever it loads; the difference is in the 8th significant digit of a feature).
      case .float64(let values): scalars = values.map { Float($0) }
      default:
        throw SVMError.badFeatureDirectory(path: url.path,
                                           reason: "dtype \(array.data.dtype.rawValue), expected float32 or float64")
      }
      try hash(url)
      return FeatureMatrix(rows: array.shape[0], columns: array.shape[1], scalars: scalars)
    }
    let train = try features("trainval", images: trainLabels.images)
    let test = try features("test", images: testLabels.images)
    guard train.columns == test.columns else {
      throw SVMError.badFeatureDirectory(
        path: directory.appendingPathComponent("test_\(name).npy").path,
        reason: "\(test.columns) columns, trainval_\(name).npy has \(train.columns)")
    }
    let path = directory.path
    layers.append(SVMLayerData(layer: name, train: train, test: test, trainLabels: trainLabels,
                               testLabels: testLabels,
                               trainLocation: { "row \($0) of \(path)/trainval_\(name).npy" },
                               testLocation: { "row \($0) of \(path)/test_\(name).npy" }))
  }
  let sha = digest.finalize().map { String(format: "%02x", $0) }.joined()
  return SVMInputFiles(directory: directory, layers: layers, sha256: sha)
}
