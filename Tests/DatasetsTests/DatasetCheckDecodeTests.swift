import Foundation
import Testing
import Datasets

/// `data check --decode`: a JPEG that starts correctly but is truncated passes the magic-byte check and is caught
/// only by decoding it.
@Suite struct DatasetCheckDecodeTests {
  @Test func decodingFindsATruncatedJPEGThatMagicBytesMiss() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-check-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let folder = root.appendingPathComponent("cls")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let image = Image(width: 16, height: 16, channels: 3, pixels: (0..<768).map { UInt8($0 % 251) })
    try image.write(to: folder.appendingPathComponent("good.jpg"))
    let bytes = try Data(contentsOf: folder.appendingPathComponent("good.jpg"))
    try bytes.prefix(bytes.count / 2).write(to: folder.appendingPathComponent("cut.jpg"))

    let quick = try DatasetCheck.run(data: root, format: .imagefolder)
    #expect(quick.unreadable.isEmpty)
    let full = try DatasetCheck.run(data: root, format: .imagefolder, decodesImages: true)
    #expect(full.unreadable.map(\.path) == ["cls/cut.jpg"])
    #expect(!full.isComplete)
  }
}
