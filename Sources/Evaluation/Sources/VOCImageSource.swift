// The VOC07 SVM benchmark's images (PROTOCOLS §2.1): the extraction list trainval.txt + test.txt of a devkit year
// directory, read from JPEGImages, in list order (features row i ↔ extractionList[i]).
import Support
import Datasets
import Foundation

/// An `EvaluationImageSource` over `VOCSVMSplits.extractionList`.
public struct VOCImageSource: EvaluationImageSource {
  public let dataset: VOCDataset
  public let splits: VOCSVMSplits
  public let fingerprint: String

  /// Reads the splits of `root` (e.g. VOCdevkit/VOC2007) and fingerprints the list: SHA-256 of every image's name
  /// and content digest (FileContentDigests.swift: the bytes, so rewritten images get new features), in
  /// order, with the class names and both label matrices (so relabelled splits get new features-cache and journal
  /// keys). Throws `DatasetError` for a missing directory, split or class list, and `DatasetError.missingFile` for a
  /// listed image that is not in JPEGImages.
  public init(root: URL, trainSplit: String = "trainval", testSplit: String = "test") throws {
    let dataset = try VOCDataset(root: root)
    let splits = try dataset.svmSplits(trainSplit: trainSplit, testSplit: testSplit)
    (self.dataset, self.splits) = (dataset, splits)
    let urls = splits.extractionList.map { dataset.root.appendingPathComponent("JPEGImages/\($0)") }
    let digests = try contentDigests(of: urls, missingHint: "The split lists name it; JPEGImages must hold it.")
    var hash = SHA256()
    hash.update(Array("voc-svm-extraction v2\n\(splits.train.classes.joined(separator: ","))\n".utf8))
    for (name, digest) in zip(splits.extractionList, digests) {
      hash.update(Array("\(name)\n".utf8))
      hash.update(digest)
    }
    for matrix in [splits.train, splits.test] {
      hash.update(matrix.labels.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
    }
    fingerprint = "voc:" + hash.finalize().map { String(format: "%02x", $0) }.joined()
  }

  public var count: Int { splits.extractionList.count }

  public func image(at index: Int, channels: Int) throws -> Image {
    let url = dataset.root.appendingPathComponent("JPEGImages/\(splits.extractionList[index])")
    return convertChannels(try Image(contentsOf: url, mode: channels == 3 ? .rgb : .grayOrRGB), to: channels)
  }

  public func location(of index: Int) -> String {
    dataset.root.appendingPathComponent("JPEGImages/\(splits.extractionList[index])").path
  }

  /// The label matrices in the form the SVM protocols take.
  public var trainLabels: SVMLabels { SVMLabels(splits.train) }
  public var testLabels: SVMLabels { SVMLabels(splits.test) }
}
