// Semantic segmentation datasets on disk: PASCAL VOC 2012 (+ SBD aug, mmseg's layout), VOC2007-style devkits
// (the scene set of `data make-scenes`), and Cityscapes. Each sample is an RGB image and a 1-channel label map of
// the same size (class index per pixel, 255 = ignore). Reference: mmseg 0.x mmseg/datasets/{custom,voc,
// cityscapes}.py and configs/_base_/datasets/pascal_voc12_aug.py.
import Foundation
import Support

/// An RGB image and its label map (class indices, 255 = ignore), read and checked.
public struct SegmentationSample: Sendable, Equatable {
  public var id: String
  public var image: Image  // RGB
  public var label: Image  // 1 channel, same size

  public var pair: SegmentationPair { SegmentationPair(image: image, label: label) }
}

/// One entry of a segmentation split: where its image and label map are.
public struct SegmentationFile: Sendable, Equatable {
  public var id: String
  public var image: URL
  public var label: URL
  /// Cityscapes `_gtFine_labelIds.png`: label ids to map to train ids on reading.
  public var mapsLabelIDs: Bool
}

public struct SegmentationDataset: Sendable {
  public enum Layout: String, Sendable, Equatable {
    /// VOC2012 with mmseg's aug layout: SegmentationClass (palette PNG), SegmentationClassAug (gray PNG),
    /// ImageSets/Segmentation/{train,val,trainval,aug}.txt; split "train+aug" is mmseg's voc12aug training set.
    case voc2012
    /// A VOC2007-style devkit with SegmentationClass, such as `data make-scenes` writes.
    case vocDevkit
    /// leftImg8bit/<split>/<city>/*_leftImg8bit.png with gtFine/<split>/<city>/*_gtFine_labelTrainIds.png.
    case cityscapes
  }

  public let root: URL
  public let split: String
  public let layout: Layout
  /// Class names in label-index order.
  public let classNames: [String]
  public let files: [SegmentationFile]
  /// SHA-256 (hex) over the layout, split, class names, and every sample's id, image path and label path
  /// (relative to the root) and both files' sizes in bytes: the list and sizes, not the pixel bytes.
  public let fingerprint: String

  public var count: Int { files.count }
  public var ids: [String] { files.map(\.id) }

  /// Opens `root` and the split's list. `split` names one list or several joined by "+" ("train+aug": VOC2012's
  /// train.txt with SegmentationClass masks, then aug.txt with SegmentationClassAug masks, as mmseg's voc12aug
  /// config concatenates them). Checks that every image and label file exists; pixels are read by `sample(at:)`.
  public static func open(root: URL, split: String) throws -> SegmentationDataset {
    try DatasetFiles.requireDirectory(root, hint: "--data must be a VOC year directory (VOCdevkit/VOC2012, "
                                        + "VOCdevkit/VOC2007) or a Cityscapes root (with leftImg8bit and gtFine).")
    let parts = split.split(separator: "+").map(String.init)
    guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else {
      throw DatasetError.unknownLayout(path: root.path, hint: "The split '\(split)' names no list; use e.g. train, "
                                         + "val, train+aug.")
    }
    let layout = try detectLayout(root)
    let classNames: [String]
    var files: [SegmentationFile] = []
    switch layout {
    case .cityscapes:
      classNames = SegmentationClasses.cityscapes
      for part in parts { files += try cityscapesFiles(root: root, split: part) }
    case .voc2012, .vocDevkit:
      classNames = layout == .voc2012 ? SegmentationClasses.voc : try devkitClassNames(root)
      for part in parts { files += try vocFiles(root: root, split: part) }
    }
    guard !files.isEmpty else {
      throw DatasetError.noImages(path: root.path, hint: "The split '\(split)' lists no images.")
    }
    let fingerprint = try fingerprint(root: root, split: split, layout: layout, classNames: classNames, files: files)
    return SegmentationDataset(root: root, split: split, layout: layout, classNames: classNames, files: files,
                               fingerprint: fingerprint)
  }

  /// Reads sample `index`: the image as RGB, the label map as indices (palette PNG indices or gray levels;
  /// Cityscapes label ids mapped to train ids), checked for size and class range.
  public func sample(at index: Int) throws -> SegmentationSample {
    precondition(index >= 0 && index < count, "Sample index \(index) is outside 0..<\(count).")
    let file = files[index]
    let image = try Image(contentsOf: file.image, mode: .rgb)
    var label = try Image(contentsOf: file.label, mode: .indices)
    if file.mapsLabelIDs {
      let table = SegmentationClasses.cityscapesTrainIDs
      label.pixels = label.pixels.map { table[Int($0)] }
    }
    guard label.width == image.width && label.height == image.height else {
      throw DatasetError.labelSizeMismatch(path: file.label.path, labelSize: "\(label.width)×\(label.height)",
                                           imagePath: file.image.path, imageSize: "\(image.width)×\(image.height)")
    }
    if let bad = Self.firstOutOfRange(label.pixels, classCount: classNames.count) {
      throw DatasetError.labelOutOfRange(
        path: file.label.path, value: Int(bad), classCount: classNames.count,
        hint: layout == .cityscapes
          ? "Cityscapes labels must be train ids (mmseg's tools/convert_datasets/cityscapes.py writes them)."
          : "VOC masks hold 0 (background) … \(classNames.count - 1) and 255 (void); is this mask from another dataset?")
    }
    return SegmentationSample(id: file.id, image: image, label: label)
  }

  /// The first byte that is neither a class index nor 255.
  static func firstOutOfRange(_ bytes: [UInt8], classCount: Int) -> UInt8? {
    var seen = [Bool](repeating: false, count: 256)
    for value in bytes { seen[Int(value)] = true }
    return (classCount..<255).first { seen[$0] }.map { UInt8($0) }
  }

  /// The first `count` samples (all when `count` ≥ the set), with the fingerprint of that subset.
  public func prefix(_ count: Int) throws -> SegmentationDataset {
    guard count < files.count else { return self }
    let kept = Array(files.prefix(count))
    let subset = split + "[:\(count)]"
    return SegmentationDataset(root: root, split: subset, layout: layout, classNames: classNames, files: kept,
                               fingerprint: try Self.fingerprint(root: root, split: subset, layout: layout,
                                                                 classNames: classNames, files: kept))
  }

  /// The layout of the folder at `root`, or nil when it is none of the three.
  public static func layout(of root: URL) -> Layout? { try? detectLayout(root) }

  // MARK: - Layouts

  static func detectLayout(_ root: URL) throws -> Layout {
    func has(_ path: String) -> Bool { DatasetFiles.isDirectory(root.appendingPathComponent(path)) }
    if has("leftImg8bit") && has("gtFine") { return .cityscapes }
    guard has("JPEGImages") && has("ImageSets/Segmentation") else {
      throw DatasetError.unknownLayout(
        path: root.path,
        hint: "A segmentation dataset is a VOC year directory (JPEGImages, SegmentationClass, "
          + "ImageSets/Segmentation) or a Cityscapes root (leftImg8bit, gtFine). Point --data at VOCdevkit/VOC2012, "
          + "not at VOCdevkit.")
    }
    if has("SegmentationClassAug") || DatasetFiles.isFile(root.appendingPathComponent("ImageSets/Segmentation/aug.txt")) {
      return .voc2012
    }
    // A devkit whose classification lists name exactly the 20 VOC classes (or that has none) is real VOC.
    let listed = try mainClassNames(root)
    return listed.isEmpty || Set(listed) == Set(SegmentationClasses.voc.dropFirst()) ? .voc2012 : .vocDevkit
  }

  /// The classes of ImageSets/Main/<class>_<split>.txt files, sorted.
  static func mainClassNames(_ root: URL) throws -> [String] {
    let main = root.appendingPathComponent("ImageSets/Main")
    guard DatasetFiles.isDirectory(main) else { return [] }
    let names = try DatasetFiles.contents(of: main).compactMap { name -> String? in
      let parts = name.split(separator: "_", omittingEmptySubsequences: false)
      return name.hasSuffix(".txt") && parts.count == 2 && !parts[0].isEmpty ? String(parts[0]) : nil
    }
    return Set(names).sortedByCodePoint()
  }

  /// A scene devkit's classes: background, then the categories of the COCO file `data make-scenes` writes beside
  /// the devkit (`<out>/annotations/instances_trainval.json`, category id = mask index), or — without it — the
  /// Fashion-MNIST scene classes when ImageSets/Main names exactly those.
  static func devkitClassNames(_ root: URL) throws -> [String] {
    let coco = root.deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("annotations/instances_trainval.json")
    if DatasetFiles.isFile(coco) {
      let bytes = try DatasetFiles.readBytes(coco)
      guard let json = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let categories = json["categories"] as? [[String: Any]] else {
        throw DatasetError.malformedJSON(path: coco.path, reason: "it has no 'categories' list")
      }
      var names: [Int: String] = [:]
      for category in categories {
        guard let id = category["id"] as? Int, let name = category["name"] as? String, (1..<255).contains(id) else {
          throw DatasetError.malformedJSON(path: coco.path, reason: "a category lacks an id in 1…254 or a name")
        }
        names[id] = name
      }
      let count = names.keys.max() ?? 0
      guard names.count == count else {
        throw DatasetError.malformedJSON(path: coco.path, reason: "category ids are not 1…\(count) without gaps")
      }
      return ["background"] + (1...max(count, 1)).compactMap { names[$0] }
    }
    let listed = try mainClassNames(root)
    if Set(listed) == Set(SceneItems.fashionMNISTClassNames) { return ["background"] + SceneItems.fashionMNISTClassNames }
    throw DatasetError.unknownLayout(
      path: root.path,
      hint: "This VOC-style devkit names classes \(listed.prefix(5).joined(separator: ", "))… in ImageSets/Main, "
        + "but their mask indices are unknown: keep the annotations/instances_trainval.json that `data make-scenes` "
        + "writes two folders up, or use the 20 VOC classes.")
  }

  /// ImageSets/Segmentation/<split>.txt; "aug" reads SegmentationClassAug, every other list SegmentationClass.
  static func vocFiles(root: URL, split: String) throws -> [SegmentationFile] {
    let list = root.appendingPathComponent("ImageSets/Segmentation/\(split).txt")
    let labelFolder = split == "aug" ? "SegmentationClassAug" : "SegmentationClass"
    let lines = try DatasetFiles.readLines(
      list, hint: split == "aug"
        ? "The voc12aug split needs mmseg's aug.txt (tools/convert_datasets/voc_aug.py writes it with SegmentationClassAug)."
        : "Split '\(split)' has no list; VOC2012 has train, val and trainval.")
    var files: [SegmentationFile] = []
    for (number, line) in lines.enumerated() {
      let fields = line.whitespaceFields
      if fields.isEmpty { continue }
      guard fields.count == 1 else {
        throw DatasetError.malformedLine(path: list.path, line: number + 1, text: String(line), expected: "one image id")
      }
      let id = String(fields[0])
      let image = root.appendingPathComponent("JPEGImages/\(id).jpg")
      let label = root.appendingPathComponent("\(labelFolder)/\(id).png")
      try DatasetFiles.requireFile(image, hint: "\(list.lastPathComponent) line \(number + 1) lists '\(id)'.")
      try DatasetFiles.requireFile(label, hint: "\(list.lastPathComponent) line \(number + 1) lists '\(id)'; every "
                                     + "listed image needs its mask in \(labelFolder).")
      files.append(SegmentationFile(id: id, image: image, label: label, mapsLabelIDs: false))
    }
    return files
  }

  /// mmseg's CityscapesDataset: every `*_leftImg8bit.png` under leftImg8bit/<split> (sorted), its label
  /// `gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png`, else `_gtFine_labelIds.png` mapped to train ids.
  static func cityscapesFiles(root: URL, split: String) throws -> [SegmentationFile] {
    let images = root.appendingPathComponent("leftImg8bit/\(split)")
    try DatasetFiles.requireDirectory(images, hint: "Cityscapes has leftImg8bit/train, val and test.")
    let suffix = "_leftImg8bit.png"
    var files: [SegmentationFile] = []
    for city in try DatasetFiles.contents(of: images).sortedByCodePoint()
    where DatasetFiles.isDirectory(images.appendingPathComponent(city)) {
      let names = try DatasetFiles.contents(of: images.appendingPathComponent(city)).filter { $0.hasSuffix(suffix) }
      for name in names.sortedByCodePoint() {
        let stem = String(name.dropLast(suffix.count))
        let labels = root.appendingPathComponent("gtFine/\(split)/\(city)")
        let trainIDs = labels.appendingPathComponent("\(stem)_gtFine_labelTrainIds.png")
        let labelIDs = labels.appendingPathComponent("\(stem)_gtFine_labelIds.png")
        let mapsLabelIDs = !DatasetFiles.isFile(trainIDs)
        if mapsLabelIDs {
          try DatasetFiles.requireFile(
            labelIDs, hint: "Neither \(trainIDs.lastPathComponent) nor the label ids exist for \(city)/\(name); "
              + "extract gtFine_trainvaltest.zip (and run mmseg's tools/convert_datasets/cityscapes.py).")
        }
        files.append(SegmentationFile(id: "\(city)/\(stem)", image: images.appendingPathComponent("\(city)/\(name)"),
                                      label: mapsLabelIDs ? labelIDs : trainIDs, mapsLabelIDs: mapsLabelIDs))
      }
    }
    return files
  }

  static func fingerprint(root: URL, split: String, layout: Layout, classNames: [String],
                          files: [SegmentationFile]) throws -> String {
    var hash = SHA256()
    func add(_ text: String) { hash.update(Data((text + "\n").utf8)) }
    add("segmentation-dataset v1"); add(layout.rawValue); add(split); add(classNames.joined(separator: ","))
    let prefix = root.standardizedFileURL.path + "/"
    func relative(_ url: URL) -> String {
      let path = url.standardizedFileURL.path
      return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
    for file in files {
      let imageSize = DatasetFiles.size(of: file.image) ?? -1, labelSize = DatasetFiles.size(of: file.label) ?? -1
      add("\(file.id)\t\(relative(file.image))\t\(imageSize)\t\(relative(file.label))\t\(labelSize)")
    }
    return hash.finalize().map { String(format: "%02x", $0) }.joined()
  }
}
