// root/class_name/**/image files, the ImageNet layout; mirrors torchvision.datasets.ImageFolder (make_dataset).
import Foundation

/// An image file and the index of its class.
public struct LabeledFile: Sendable, Equatable {
  public var url: URL
  public var label: Int

  public init(url: URL, label: Int) {
    self.url = url
    self.label = label
  }
}

/// A dataset whose classes are the subdirectories of `root`, as torchvision's `ImageFolder` reads it.
///
/// Classes are the subdirectory names in code-point order (Python `sorted`); the images of a class are found
/// recursively (`os.walk(followlinks=True)`), directories visited in sorted path order and files sorted within
/// each directory. Files are kept when their lower-cased name ends with one of `extensions`. Hidden entries are
/// not skipped, exactly as in torchvision.
public struct ImageFolderDataset: Sendable {
  /// torchvision's `IMG_EXTENSIONS`.
  public static let defaultExtensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

  public let root: URL
  /// Class names; a sample's `label` indexes this array.
  public let classes: [String]
  /// Every image, class by class.
  public let samples: [LabeledFile]

  /// Lists the images under `root`. Throws `DatasetError` when `root` is missing, has no class directories,
  /// or a class directory holds no image (torchvision raises `FileNotFoundError` there too).
  public init(root: URL, extensions: [String] = ImageFolderDataset.defaultExtensions) throws {
    try DatasetFiles.requireDirectory(root, hint: "--data must be the folder holding one subfolder per class.")
    self.root = root
    let classes = try DatasetFiles.contents(of: root)
      .filter { DatasetFiles.isDirectory(root.appendingPathComponent($0)) }
      .sortedByCodePoint()
    guard !classes.isEmpty else {
      throw DatasetError.noImages(path: root.path, hint: "An image folder needs one subfolder per class "
                                    + "(root/class_name/image.jpg); this folder has no subfolders.")
    }
    let suffixes = extensions.map { $0.lowercased() }
    var samples: [LabeledFile] = []
    var emptyClasses: [String] = []
    for (label, name) in classes.enumerated() {
      let before = samples.count
      for (directory, files) in try Self.walk(root.appendingPathComponent(name)) {
        for file in files where suffixes.contains(where: { file.lowercased().hasSuffix($0) }) {
          samples.append(LabeledFile(url: directory.appendingPathComponent(file), label: label))
        }
      }
      if samples.count == before { emptyClasses.append(name) }
    }
    if !emptyClasses.isEmpty {
      throw DatasetError.noImages(
        path: root.path, hint: "Class folder(s) \(emptyClasses.joined(separator: ", ")) hold no file ending in "
          + "\(extensions.joined(separator: ", ")); remove them or add images.")
    }
    self.classes = classes
    self.samples = samples
  }

  public var count: Int { samples.count }

  /// Every directory under `directory` (itself included) with its non-directory entries, both sorted:
  /// `sorted(os.walk(directory, followlinks=True))` with each file list sorted.
  private static func walk(_ directory: URL) throws -> [(URL, [String])] {
    var found: [(path: String, url: URL, files: [String])] = []
    var pending = [directory]
    while let next = pending.popLast() {
      var files: [String] = []
      for name in try DatasetFiles.contents(of: next) {
        let url = next.appendingPathComponent(name)
        if DatasetFiles.isDirectory(url) { pending.append(url) } else { files.append(name) }
      }
      found.append((next.path, next, files.sortedByCodePoint()))
    }
    found.sort { $0.path.precedesInCodePointOrder($1.path) }
    return found.map { ($0.url, $0.files) }
  }
}
