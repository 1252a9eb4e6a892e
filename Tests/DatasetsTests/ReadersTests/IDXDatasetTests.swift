import Foundation
import Testing
import TestSupport
import Tensors
@testable import Datasets

@Suite struct IDXDatasetTests {
  /// make_fixtures.py: train pixel (i, row, col) = 10·i + 4·row + col, labels 0 1 2 1 0 (gzip);
  /// test pixel k = 200 + k, labels 2 0 (plain).
  @Test func readsGzippedAndPlainFiles() throws {
    let directory = try ReaderFixtures.url("idx")
    let train = try IDXDataset(directory: directory, split: .train)
    #expect(train.count == 5 && train.height == 3 && train.width == 4)
    #expect(train.labels == [0, 1, 2, 1, 0])
    #expect(train.classCount == 3)
    let image = train.image(at: 2)
    #expect(image.channels == 1 && image.width == 4 && image.height == 3)
    #expect(image[1, 2, 0] == 29)  // x 1, y 2: 10·2 + 4·2 + 1
    let test = try IDXDataset(directory: directory, split: .test)
    #expect(test.labels == [2, 0])
    #expect(test.image(at: 1).pixels == Array(212..<224).map(UInt8.init))
  }

  /// A gzipped IDX file stops inflating at the limit with an error naming it and the limit; corrupt gzip data is
  /// `corruptCompressedData`. Both are DatasetErrors, which `data check` lists as unreadable files.
  @Test func gzipLimitAndCorruptionAreDatasetErrors() throws {
    let compressed = try ReaderFixtures.bytes("idx/train-images-idx3-ubyte.gz")
    let path = "/data/train-images-idx3-ubyte.gz"
    let full = try IDXArray(bytes: compressed, path: path, maximumInflatedBytes: 16 + 5 * 3 * 4)
    #expect(full.dimensions == [5, 3, 4])
    #expect(throws: DatasetError.decompressedSizeExceedsLimit(path: path, limit: 16 + 5 * 3 * 4 - 1)) {
      try IDXArray(bytes: compressed, path: path, maximumInflatedBytes: 16 + 5 * 3 * 4 - 1)
    }
    #expect(DatasetError.decompressedSizeExceedsLimit(path: path, limit: 1 << 32).description
              .contains("\(path): it inflates to more than 4294967296 bytes (4.0 GiB)"))
    var corrupt = compressed
    corrupt[corrupt.count - 8] ^= 1  // CRC-32
    #expect {
      try IDXArray(bytes: corrupt, path: path)
    } throws: { error in
      guard case let .corruptCompressedData(errorPath, reason) = error as? DatasetError else { return false }
      return errorPath == path && reason.contains("CRC-32")
    }
  }

  @Test func truncatedOrGarbageIDXThrows() throws {
    let plain = try ReaderFixtures.bytes("idx/t10k-images-idx3-ubyte")
    for length in 0..<plain.count {
      #expect(throws: DatasetError.self) { try IDXArray(bytes: Array(plain[..<length]), path: "t10k") }
    }
    #expect(throws: DatasetError.self) { try IDXArray(bytes: plain + [0], path: "extra byte") }
    var floats = plain
    floats[2] = 0x0D  // float32 data: not supported
    #expect(throws: DatasetError.self) { try IDXArray(bytes: floats, path: "floats") }
    var huge = plain
    huge[4] = 0xFF  // first dimension ≈ 4·10⁹: more data than the file has
    #expect(throws: DatasetError.self) { try IDXArray(bytes: huge, path: "huge") }
    var rng = SplitMix64(seed: 3)
    for _ in 0..<200 {
      let garbage = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      #expect(throws: DatasetError.self) { try IDXArray(bytes: [0, 0, 8, 3] + garbage, path: "garbage") }
    }
  }

  @Test func mismatchedLabelCountIsAnError() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try ReaderFixtures.write(try ReaderFixtures.bytes("idx/t10k-images-idx3-ubyte"), to: "t10k-images-idx3-ubyte",
                             in: folder)
    try ReaderFixtures.write([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3], to: "t10k-labels-idx1-ubyte", in: folder)
    #expect(throws: DatasetError.self) { try IDXDataset(directory: folder, split: .test) }
    #expect {
      try IDXDataset(directory: folder, split: .train)
    } throws: { error in
      guard case let .missingFile(path, _) = error as? DatasetError else { return false }
      return path.hasSuffix("train-images-idx3-ubyte.gz")
    }
  }

  /// Debian's dataset-fashion-mnist (`make setup`); skipped when it is not installed.
  @Test(.tags(.slow), .enabled(if: runsSlowTests && FileManager.default.fileExists(
    atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")))
  func realFashionMNIST() throws {
    let directory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
    let train = try IDXDataset(directory: directory, split: .train)
    let test = try IDXDataset(directory: directory, split: .test)
    #expect(train.count == 60000 && test.count == 10000)
    #expect(train.height == 28 && train.width == 28)
    #expect(train.classCount == 10 && test.classCount == 10)
    var perClass = [Int](repeating: 0, count: 10)
    for label in train.labels { perClass[Int(label)] += 1 }
    #expect(perClass == [Int](repeating: 6000, count: 10))
  }
}

@Suite struct CIFARDatasetTests {
  /// make_fixtures.py: batch b holds images 2b and 2b+1 with labels b and b+4; plane ch pixel p of image i is
  /// (i + 3·ch + p) mod 256.
  @Test func readsCIFAR10Batches() throws {
    let train = try CIFARDataset(directory: try ReaderFixtures.url("cifar10"), split: .train)
    #expect(train.variant == .cifar10 && train.count == 10)
    #expect(train.labels == [1, 5, 2, 6, 3, 7, 4, 8, 5, 9])
    #expect(train.classes.first == "airplane" && train.classes.count == 10)
    #expect(train.coarseLabels == nil)
    let image = train.image(at: 0)  // fixture image 2
    #expect(image.width == 32 && image.height == 32 && image.channels == 3)
    #expect([image[0, 0, 0], image[0, 0, 1], image[0, 0, 2]] == [2, 5, 8])
    #expect(image[1, 1, 0] == 35)  // p = 33
    let test = try CIFARDataset(directory: try ReaderFixtures.url("cifar10"), split: .test)
    #expect(test.labels == [9])
  }

  @Test func readsCIFAR100CoarseAndFineLabels() throws {
    let train = try CIFARDataset(directory: try ReaderFixtures.url("cifar100"), split: .train)
    #expect(train.variant == .cifar100)
    #expect(train.labels == [42, 99, 0])
    #expect(train.coarseLabels == [3, 19, 0])
    #expect(train.classes.count == 100 && train.classes[42] == "fine42")
    #expect(train.image(at: 1)[0, 0, 2] == 7)  // image 1, blue: 1 + 6
  }

  @Test func badBatchesThrow() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let record = try ReaderFixtures.bytes("cifar10/test_batch.bin")
    try ReaderFixtures.write(Array(record[..<3000]), to: "short.bin", in: folder)
    try ReaderFixtures.write([10] + Array(record[1...]), to: "label.bin", in: folder)
    try ReaderFixtures.write([], to: "empty.bin", in: folder)
    for name in ["short.bin", "label.bin", "empty.bin", "absent.bin"] {
      #expect(throws: DatasetError.self) {
        try CIFARDataset(files: [folder.appendingPathComponent(name)], variant: .cifar10)
      }
    }
    #expect(throws: DatasetError.self) { try CIFARDataset(directory: folder, split: .train) }  // unknown layout
  }
}
