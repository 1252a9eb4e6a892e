// Locating the gzip fixtures (Fixtures/gzip, written by scripts/reference/make_reader_fixtures.py) and scratch folders.
import Foundation
import Testing

enum SupportFixtures {
  /// Fixtures/<relative>.
  static func url(_ relative: String) throws -> URL {
    try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures").appendingPathComponent(relative)
  }

  static func bytes(_ relative: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: try url(relative))) }

  /// Runs `body` with a fresh temporary folder, removed afterwards.
  static func withTemporaryFolder<R>(_ body: (URL) throws -> R) throws -> R {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-support-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
  }
}
