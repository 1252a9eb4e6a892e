// A PASCAL VOC devkit year directory (VOCdevkit/VOC2007, VOC2012): image sets, XML annotations, the VOC07
// classification label matrix of PROTOCOLS §2.1 (mmselfsup tools/data_converters/create_voc_data_files.py),
// and the segmentation image/mask pairs.
import Foundation

/// The classification labels of one split: `labels[image · classes.count + class]` ∈ {1, 0, −1}.
///
/// Built as `create_voc_data_files.py` builds `SVMLabels/*_labels.npy`: VOC's 1 (present) → 1, −1 (absent) → 0,
/// 0 (difficult) → −1 (ignored), and −1 when an image has no line in a class's file.
public struct VOCLabelMatrix: Sendable, Equatable {
  /// Class names in sorted class-file order (aeroplane … tvmonitor in real VOC).
  public var classes: [String]
  /// Every image named in any class file of the split, in sorted order.
  public var imageIDs: [String]
  public var labels: [Int32]  // [imageIDs.count, classes.count], row-major

  public subscript(image: Int, classIndex: Int) -> Int32 { labels[image * classes.count + classIndex] }

  /// Images labeled 1 for each class.
  public var positiveCounts: [Int] {
    (0..<classes.count).map { c in (0..<imageIDs.count).reduce(0) { $0 + (self[$1, c] == 1 ? 1 : 0) } }
  }
}

/// The VOC07 SVM benchmark's data (PROTOCOLS §2.1): features are extracted for `extractionList`
/// (Lists/trainvaltest.txt = ImageSets/Main/trainval.txt then test.txt, ".jpg" appended) and split at `splitAt`;
/// `train` and `test` are the label matrices of trainval and test.
public struct VOCSVMSplits: Sendable, Equatable {
  public var train: VOCLabelMatrix
  public var test: VOCLabelMatrix
  public var extractionList: [String]
  public var splitAt: Int
}

/// A segmentation sample: JPEGImages/<id>.jpg and its SegmentationClass/<id>.png palette mask.
public struct VOCSegmentationPair: Sendable, Equatable {
  public var id: String
  public var image: URL
  public var mask: URL
}

/// A VOC devkit year directory, e.g. `VOCdevkit/VOC2007`.
public struct VOCDataset: Sendable {
  public let root: URL

  /// Checks that `root` holds `ImageSets` (the image lists every use needs). Nothing else is read yet.
  public init(root: URL) throws {
    try DatasetFiles.requireDirectory(root, hint: "--data must be a VOC year directory such as VOCdevkit/VOC2007.")
    try DatasetFiles.requireDirectory(
      root.appendingPathComponent("ImageSets"),
      hint: "A VOC year directory holds Annotations, ImageSets and JPEGImages; point --data at VOCdevkit/VOC2007 "
        + "(not at VOCdevkit).")
    self.root = root
  }

  public var mainSetsDirectory: URL { root.appendingPathComponent("ImageSets/Main") }

  public func imageURL(id: String) -> URL { root.appendingPathComponent("JPEGImages/\(id).jpg") }
  public func annotationURL(id: String) -> URL { root.appendingPathComponent("Annotations/\(id).xml") }
  public func maskURL(id: String) -> URL { root.appendingPathComponent("SegmentationClass/\(id).png") }

  /// The image IDs of `ImageSets/Main/<split>.txt`, in file order.
  public func imageIDs(split: String) throws -> [String] {
    try Self.readIDs(mainSetsDirectory.appendingPathComponent("\(split).txt"), split: split)
  }

  /// The split names that have an `ImageSets/Main/<split>.txt` list, sorted.
  public func mainSplits() throws -> [String] {
    guard DatasetFiles.isDirectory(mainSetsDirectory) else { return [] }
    return try DatasetFiles.contents(of: mainSetsDirectory)
      .filter { $0.hasSuffix(".txt") && !$0.contains("_") }
      .map { String($0.dropLast(4)) }
      .sortedByCodePoint()
  }

  /// Parses `Annotations/<id>.xml`.
  public func annotation(id: String) throws -> VOCAnnotation { try VOCAnnotation(contentsOf: annotationURL(id: id)) }

  /// The classification label matrix of `split` from `ImageSets/Main/<class>_<split>.txt`.
  ///
  /// Class files are those named `<class>_<split>.txt` with no other underscore (`validate_files`), taken in
  /// sorted file-name order. Blank lines are skipped; any other line must be `<id> <flag>` with flag 1, −1 or 0.
  public func classificationLabels(split: String) throws -> VOCLabelMatrix {
    let suffix = "_\(split).txt"
    let files = try classListFiles(split: split)
    guard !files.isEmpty else {
      throw DatasetError.missingFile(
        path: mainSetsDirectory.appendingPathComponent("<class>\(suffix)").path,
        hint: "No class lists for split '\(split)'; VOC2007 has trainval and test, VOC2012 train, val and trainval.")
    }
    let classes = files.map { String($0.dropLast(suffix.count)) }
    var rows: [String: [Int32]] = [:]
    for (classIndex, file) in files.enumerated() {
      let url = mainSetsDirectory.appendingPathComponent(file)
      for (index, line) in try DatasetFiles.readLines(url).enumerated() {
        let fields = line.whitespaceFields
        if fields.isEmpty { continue }
        guard fields.count == 2, let flag = Int(fields[1]), (-1...1).contains(flag) else {
          throw DatasetError.malformedLine(path: url.path, line: index + 1, text: String(line),
                                           expected: "'<image id> <flag>' with flag 1, -1 or 0")
        }
        let id = String(fields[0])
        // 1 → 1 (present), −1 → 0 (absent), 0 → −1 (difficult: ignored by the SVM).
        let label: Int32 = flag == 1 ? 1 : flag == -1 ? 0 : -1
        rows[id, default: [Int32](repeating: -1, count: files.count)][classIndex] = label
      }
    }
    let ids = rows.keys.sortedByCodePoint()
    return VOCLabelMatrix(classes: classes, imageIDs: ids, labels: ids.flatMap { rows[$0]! })
  }

  /// The class-list file names of `split` (`<class>_<split>.txt`, one underscore), sorted.
  func classListFiles(split: String) throws -> [String] {
    try DatasetFiles.requireDirectory(mainSetsDirectory, hint: "VOC classification needs ImageSets/Main.")
    return try DatasetFiles.contents(of: mainSetsDirectory)
      .filter { $0.hasSuffix("_\(split).txt") && $0.split(separator: "_", omittingEmptySubsequences: false).count == 2 }
      .sortedByCodePoint()
  }

  /// The splits that have at least one class list `ImageSets/Main/<class>_<split>.txt`, sorted.
  public func classListSplits() throws -> [String] {
    guard DatasetFiles.isDirectory(mainSetsDirectory) else { return [] }
    let splits = try DatasetFiles.contents(of: mainSetsDirectory).compactMap { name -> String? in
      let parts = name.split(separator: "_", omittingEmptySubsequences: false)
      guard name.hasSuffix(".txt"), parts.count == 2, !parts[0].isEmpty, parts[1].count > 4 else { return nil }
      return String(parts[1].dropLast(4))
    }
    return Set(splits).sortedByCodePoint()
  }

  /// The class lists missing from `splits`: `<class>_<split>.txt` for every class that has a list in another of
  /// `splits` but not in `split`, in split then class order. Every class needs a list in each split, or its labels
  /// would be missing from one side of the benchmark.
  public func missingClassLists(splits: [String]) throws -> [URL] {
    let classes = try splits.map { split in
      Set(try classListFiles(split: split).map { String($0.dropLast("_\(split).txt".count)) })
    }
    let all = classes.reduce(Set<String>()) { $0.union($1) }
    return zip(splits, classes).flatMap { split, present in
      all.subtracting(present).sortedByCodePoint().map { mainSetsDirectory.appendingPathComponent("\($0)_\(split).txt") }
    }
  }

  /// The first disagreement between `ImageSets/Main/<split>.txt` (`ids`) and the images its class lists name
  /// (`labels.imageIDs`), or nil when both name the same images (in any order): an image a class list names that
  /// the split list lacks (the error's path is that class list), else one the split list has that no class list
  /// names (the path is the split list).
  public func membershipError(split: String, ids: [String], labels: VOCLabelMatrix) -> DatasetError? {
    let listed = Set(ids)
    let labelled = Set(labels.imageIDs)
    let splitList = "ImageSets/Main/\(split).txt"
    if let extra = labels.imageIDs.first(where: { !listed.contains($0) }) {
      let others = labels.imageIDs.count { !listed.contains($0) } - 1
      let file = (try? classListFiles(split: split))?.first { name in
        let lines = (try? DatasetFiles.readLines(mainSetsDirectory.appendingPathComponent(name))) ?? []
        return lines.contains { $0.whitespaceFields.first.map(String.init) == extra }
      } ?? "<class>_\(split).txt"
      return .inconsistentSplits(
        path: mainSetsDirectory.appendingPathComponent(file).path,
        reason: "it names image '\(DatasetError.excerpt(extra))', which \(splitList) does not list"
          + (others > 0 ? " (nor \(others) more images of the class lists)" : ""))
    }
    if let extra = ids.first(where: { !labelled.contains($0) }) {
      let others = ids.count { !labelled.contains($0) } - 1
      return .inconsistentSplits(
        path: mainSetsDirectory.appendingPathComponent("\(split).txt").path,
        reason: "it lists image '\(DatasetError.excerpt(extra))', which no <class>_\(split).txt names"
          + (others > 0 ? " (nor \(others) more of its images)" : ""))
    }
    return nil
  }

  /// The VOC07 SVM benchmark's splits (PROTOCOLS §2.1): labels of `trainSplit` and `testSplit`, and the feature
  /// extraction list `trainSplit.txt + testSplit.txt`. For VOC2012, which has no test lists, pass "train", "val".
  /// Throws `DatasetError.missingFile` naming a class list one split lacks and the other has, and
  /// `DatasetError.inconsistentSplits` naming an image that a class list names and the split list lacks (or the
  /// reverse), or when a list's order differs from its label matrix's sorted order, since features and labels would
  /// then be paired wrongly.
  public func svmSplits(trainSplit: String = "trainval", testSplit: String = "test") throws -> VOCSVMSplits {
    let train = try classificationLabels(split: trainSplit)
    let test = try classificationLabels(split: testSplit)
    if let missing = try missingClassLists(splits: [trainSplit, testSplit]).first {
      let other = missing.lastPathComponent.hasSuffix("_\(trainSplit).txt") ? testSplit : trainSplit
      let className = missing.lastPathComponent.split(separator: "_").first.map(String.init) ?? ""
      throw DatasetError.missingFile(
        path: missing.path, hint: "\(className)_\(other).txt exists; every class needs a list for both \(trainSplit) "
          + "and \(testSplit). Re-extract the dataset's ImageSets.")
    }
    let trainIDs = try imageIDs(split: trainSplit)
    let testIDs = try imageIDs(split: testSplit)
    for (split, ids, matrix) in [(trainSplit, trainIDs, train), (testSplit, testIDs, test)] {
      if let error = membershipError(split: split, ids: ids, labels: matrix) { throw error }
    }
    for (split, ids, matrix) in [(trainSplit, trainIDs, train), (testSplit, testIDs, test)] where ids != matrix.imageIDs {
      throw DatasetError.inconsistentSplits(
        path: mainSetsDirectory.appendingPathComponent("\(split).txt").path,
        reason: "it lists the images of its class lists, but not in sorted order (or some twice); the SVM protocol "
          + "pairs features (list order) with labels (sorted order)")
    }
    return VOCSVMSplits(train: train, test: test, extractionList: (trainIDs + testIDs).map { $0 + ".jpg" },
                        splitAt: trainIDs.count)
  }

  /// The split names that have an `ImageSets/Segmentation/<split>.txt` list, sorted.
  public func segmentationSplits() throws -> [String] {
    let directory = root.appendingPathComponent("ImageSets/Segmentation")
    guard DatasetFiles.isDirectory(directory) else { return [] }
    return try DatasetFiles.contents(of: directory).filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }
      .sortedByCodePoint()
  }

  /// The (image, mask) pairs of `ImageSets/Segmentation/<split>.txt`, in file order. Files are not checked here.
  public func segmentationPairs(split: String) throws -> [VOCSegmentationPair] {
    let list = root.appendingPathComponent("ImageSets/Segmentation/\(split).txt")
    return try Self.readIDs(list, split: split).map { id in
      VOCSegmentationPair(id: id, image: imageURL(id: id), mask: maskURL(id: id))
    }
  }

  /// The first field of every non-blank line.
  private static func readIDs(_ url: URL, split: String) throws -> [String] {
    try DatasetFiles.readLines(url, hint: "Split '\(split)' has no image list in this devkit.")
      .compactMap { $0.whitespaceFields.first.map(String.init) }
  }
}
