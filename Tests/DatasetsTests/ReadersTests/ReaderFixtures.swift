// Locating the hand-made reader fixtures (Fixtures/readers, written by make_fixtures.py) and scratch folders.
import Foundation
import Testing

enum ReaderFixtures {
  /// Fixtures/readers/<relative>.
  static func url(_ relative: String) throws -> URL {
    let base = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/readers")
    return base.appendingPathComponent(relative)
  }

  static func bytes(_ relative: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: try url(relative))) }

  /// A fresh temporary folder; remove it with `FileManager.default.removeItem(at:)` in a `defer`.
  static func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-readers-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
  }

  /// Writes `contents` at folder/relative, creating directories.
  static func write(_ contents: [UInt8], to relative: String, in folder: URL) throws {
    let url = folder.appendingPathComponent(relative)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(contents).write(to: url)
  }

  static func write(_ text: String, to relative: String, in folder: URL) throws {
    try write(Array(text.utf8), to: relative, in: folder)
  }

  static let jpegBytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 0, count: 12) + [0xFF, 0xD9]
}
