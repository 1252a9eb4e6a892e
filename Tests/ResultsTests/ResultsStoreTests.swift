import Foundation
import Testing
import Results

@Suite struct ResultsStoreTests {
  @Test func opensAStoreAndReportsSQLiteVersion() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID()).sqlite").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = try ResultsStore(path: path)
    #expect(try store.sqliteVersion().hasPrefix("3."))
  }
}
