import Foundation
import Testing
import Tensors
import Datasets
import Models
@testable import Evaluation

/// Collects the cache's warnings.
final class WarningLog: @unchecked Sendable {
  // @unchecked: `warnings` is only touched while holding `lock`.
  private let lock = NSLock()
  private var stored: [FeatureCacheWarning] = []
  var warnings: [FeatureCacheWarning] { lock.withLock { stored } }
  func record(_ warning: FeatureCacheWarning) { lock.withLock { stored.append(warning) } }
}

@Suite struct FeatureCacheTests {
  static let transform = EvaluationTransform(resize: 36, size: 32, mode: .squash)

  static func backbone(seed: UInt64) -> ResNet {
    var generator = SplitMix64(seed: seed)
    return ResNet(ResNetConfig(depth: 18, widthMultiplier: 1.0 / 16), using: &generator)
  }

  static func request(_ layers: [FeatureLayer], source: any EvaluationImageSource = SyntheticSource(count: 5),
                      checkpoint: String = "aa11", batchSize: Int = 2) -> FeatureExtractionRequest {
    FeatureExtractionRequest(checkpointSHA256: checkpoint, source: source, transform: transform, layers: layers,
                             batchSize: batchSize)
  }

  func withCache(_ body: (FeatureCache, URL, WarningLog) throws -> Void) throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let log = WarningLog()
    try body(try FeatureCache(directory: directory, warn: { log.record($0) }), directory, log)
  }

  func files(in directory: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
  }

  // MARK: - Checksum

  @Test func xxHash64MatchesTheReferenceImplementation() {
    // Expected values from libxxhash 0.8.1's XXH64(data, length, seed), called through Python's ctypes.
    #expect(XXHash64.digest([UInt8]()) == 0xEF46_DB37_51D8_E999)
    #expect(XXHash64.digest(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
    #expect(XXHash64.digest([UInt8](repeating: UInt8(ascii: "a"), count: 7)) == 0xD6E4_AB28_29BC_82E5)
    let long = (0..<4).flatMap { _ in (0..<256).map(UInt8.init) } + (0..<37).map(UInt8.init)  // 1061 bytes
    #expect(XXHash64.digest(long) == 0x9939_08AD_297A_CB7C)
    #expect(XXHash64.digest((0..<100).map(UInt8.init), seed: 12345) == 0x028B_A1AE_2DE4_DE27)
    // Streaming in uneven pieces gives the one-shot digest.
    var hash = XXHash64()
    var start = 0
    for piece in [1, 30, 2, 64, 5, 400, 559] {
      long[start..<(start + piece)].withUnsafeBytes { hash.update($0) }
      start += piece
    }
    #expect(start == long.count && hash.digest == 0x9939_08AD_297A_CB7C)
  }

  // MARK: - Hits and misses

  @Test func aHitReturnsIdenticalValuesWithoutRunningTheBackbone() throws {
    try withCache { cache, directory, log in
      let layers: [FeatureLayer] = [.feature1, .feature4, .avgpool]
      let first = try FeatureExtractor(backbone: Self.backbone(seed: 1)).extract(Self.request(layers), cache: cache)
      #expect(first.computedLayers == layers)
      #expect(try files(in: directory).count == 3)
      // Another backbone under the same key: only the cache can give the first backbone's values.
      var batches = 0
      let second = try FeatureExtractor(backbone: Self.backbone(seed: 2)).extract(Self.request(layers), cache: cache) {
        _, _ in batches += 1
      }
      #expect(second.computedLayers.isEmpty && batches == 0)
      for layer in layers {
        #expect(first.matrices[layer]!.tensor.scalars == second.matrices[layer]!.tensor.scalars)
        #expect(second.cacheFiles[layer]!.lastPathComponent.hasPrefix(layer.rawValue))
      }
      // ... and they are what an uncached extraction with the first backbone gives.
      let memory = try FeatureExtractor(backbone: Self.backbone(seed: 1)).extract(Self.request(layers))
      for layer in layers { #expect(memory.matrices[layer]!.tensor.scalars == second.matrices[layer]!.tensor.scalars) }
      #expect(log.warnings.isEmpty)
    }
  }

  @Test func everyKeyFieldChangesTheFile() {
    let config = ResNetConfig(depth: 50)
    let base = FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                               transform: .svm, pooling: .specified, architecture: config)
    var variants: [FeatureCacheKey] = []
    var key = base
    key.checkpointSHA256 = "c1"; variants.append(key)
    key = base; key.datasetFingerprint = "voc07:test"; variants.append(key)
    key = base; key.layer = .feature4; variants.append(key)
    variants.append(FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                                    transform: .centerCrop, pooling: .specified, architecture: config))
    variants.append(FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                                    transform: EvaluationTransform(resize: 288, mode: .squash), pooling: .specified,
                                    architecture: config))
    variants.append(FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                                    transform: EvaluationTransform(mode: .squash, normalization: .unit(channels: 3)),
                                    pooling: .specified, architecture: config))
    variants.append(FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                                    transform: EvaluationTransform(mode: .squash, resizeRule: .pillow9),
                                    pooling: .specified, architecture: config))
    key = base; key.pooling = .adaptive; variants.append(key)
    for other in [ResNetConfig(depth: 18), ResNetConfig(depth: 50, widthMultiplier: 0.5),
                  ResNetConfig(depth: 50, cifarStem: true), ResNetConfig(depth: 50, inChannels: 1)] {
      variants.append(FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                                      transform: .svm, pooling: .specified, architecture: other))
    }
    let names = Set(([base] + variants).map(\.fileName))
    #expect(names.count == variants.count + 1)
    // zeroInitResidual only changes initialisation, not what a loaded backbone computes.
    #expect(FeatureCacheKey(checkpointSHA256: "c0", datasetFingerprint: "voc07:trainval", layer: .feature5,
                            transform: .svm, pooling: .specified,
                            architecture: ResNetConfig(depth: 50, zeroInitResidual: true)).fileName == base.fileName)
  }

  @Test func aChangedCheckpointOrDatasetMisses() throws {
    try withCache { cache, directory, _ in
      let extractor = FeatureExtractor(backbone: Self.backbone(seed: 1))
      _ = try extractor.extract(Self.request([.feature3]), cache: cache)
      let otherCheckpoint = try extractor.extract(Self.request([.feature3], checkpoint: "bb22"), cache: cache)
      #expect(otherCheckpoint.computedLayers == [.feature3])
      let otherImages = try extractor.extract(Self.request([.feature3], source: SyntheticSource(count: 5, seed: 9)),
                                              cache: cache)
      #expect(otherImages.computedLayers == [.feature3])
      #expect(try files(in: directory).count == 3)
    }
  }

  @Test func aPartialHitExtractsOnlyTheMissingLayersInOnePass() throws {
    try withCache { cache, directory, _ in
      let extractor = FeatureExtractor(backbone: Self.backbone(seed: 1))
      let first = try extractor.extract(Self.request([.feature5]), cache: cache)
      let feature5File = try #require(first.cacheFiles[.feature5])
      let before = try FileManager.default.attributesOfItem(atPath: feature5File.path)
      var batches = 0
      let second = try extractor.extract(Self.request([.feature2, .feature5, .avgpool]), cache: cache) { _, _ in
        batches += 1
      }
      #expect(second.computedLayers == [.feature2, .avgpool])
      #expect(batches == 3)  // one pass over 5 images in batches of 2 for both missing layers
      let after = try FileManager.default.attributesOfItem(atPath: feature5File.path)
      #expect(before[.systemFileNumber] as? UInt64 == after[.systemFileNumber] as? UInt64)
      #expect(try files(in: directory).count == 3)
      let memory = try extractor.extract(Self.request([.feature2, .feature5, .avgpool]))
      for layer in [FeatureLayer.feature2, .feature5, .avgpool] {
        #expect(memory.matrices[layer]!.tensor.scalars == second.matrices[layer]!.tensor.scalars)
      }
    }
  }

  // MARK: - Corruption

  /// Extracts feature4 into the cache, damages its file with `damage`, and checks the next extraction reports the
  /// file, rebuilds it, and returns the original values.
  func expectDetectedAndRebuilt(problem: String, _ damage: (URL) throws -> Void) throws {
    try withCache { cache, _, log in
      let extractor = FeatureExtractor(backbone: Self.backbone(seed: 1))
      let first = try extractor.extract(Self.request([.feature4]), cache: cache)
      let original = first.matrices[.feature4]!.tensor.scalars
      let url = try #require(first.cacheFiles[.feature4])
      try damage(url)
      let second = try extractor.extract(Self.request([.feature4]), cache: cache)
      #expect(second.computedLayers == [.feature4])
      #expect(second.matrices[.feature4]!.tensor.scalars == original)
      #expect(log.warnings.count == 1)
      let warning = try #require(log.warnings.first)
      #expect(warning.path == url.path && warning.problem.contains(problem), "\(warning)")
      // The rebuilt file is valid: a third run hits.
      #expect(try extractor.extract(Self.request([.feature4]), cache: cache).computedLayers.isEmpty)
      #expect(log.warnings.count == 1)
    }
  }

  func flipByte(at offset: @escaping (Int) -> Int) -> (URL) throws -> Void {
    { url in
      var bytes = [UInt8](try Data(contentsOf: url))
      bytes[offset(bytes.count)] ^= 0x10
      try Data(bytes).write(to: url)
    }
  }

  @Test func aFlippedDataByteIsDetectedAndRebuilt() throws {
    try expectDetectedAndRebuilt(problem: "fails its checksum", flipByte { $0 - 8 - 37 })
  }

  @Test func aFlippedHeaderByteIsDetectedAndRebuilt() throws {
    try expectDetectedAndRebuilt(problem: "fails its checksum", flipByte { _ in 40 })  // inside the key JSON
  }

  @Test func aTruncatedFileIsDetectedAndRebuilt() throws {
    try expectDetectedAndRebuilt(problem: "is truncated") { url in
      let bytes = try Data(contentsOf: url)
      try bytes.prefix(bytes.count - 100).write(to: url)
    }
  }

  @Test func anEmptyFileIsDetectedAndRebuilt() throws {
    try expectDetectedAndRebuilt(problem: "is truncated") { url in try Data().write(to: url) }
  }

  @Test func aFileOfAnotherKeyIsDetected() throws {
    try withCache { cache, directory, log in
      let extractor = FeatureExtractor(backbone: Self.backbone(seed: 1))
      let a = try extractor.extract(Self.request([.feature4]), cache: cache)
      let b = try extractor.extract(Self.request([.feature4], checkpoint: "other"), cache: cache)
      let urlA = try #require(a.cacheFiles[.feature4]), urlB = try #require(b.cacheFiles[.feature4])
      try FileManager.default.removeItem(at: urlA)
      try FileManager.default.copyItem(at: urlB, to: urlA)
      #expect(try extractor.extract(Self.request([.feature4]), cache: cache).computedLayers == [.feature4])
      #expect(log.warnings.map(\.problem) == ["holds the features of another key"])
    }
  }

  @Test func readRejectsTrailingBytesAndReportsTheFile() throws {
    try withCache { cache, _, _ in
      let first = try FeatureExtractor(backbone: Self.backbone(seed: 1)).extract(Self.request([.avgpool]), cache: cache)
      let url = try #require(first.cacheFiles[.avgpool])
      #expect(try FeatureCache.read(url).matrix.rows == 5)
      let handle = try FileHandle(forWritingTo: url)
      try handle.seekToEnd()
      try handle.write(contentsOf: Data([1, 2, 3]))
      try handle.close()
      do {
        _ = try FeatureCache.read(url)
        Issue.record("A file with trailing bytes was accepted.")
      } catch let error as FeatureCacheError {
        #expect("\(error)".contains(url.path) && "\(error)".contains("trailing bytes"))
      }
    }
  }

  // MARK: - Interrupted extraction

  @Test func aFailureMidExtractionLeavesNoCompleteLookingFile() throws {
    try withCache { cache, directory, _ in
      let extractor = FeatureExtractor(backbone: Self.backbone(seed: 1))
      let failing = SyntheticSource(count: 9, failingIndex: 6)
      #expect(throws: DatasetError.self) {
        try extractor.extract(Self.request([.feature2, .feature5], source: failing), cache: cache)
      }
      #expect(try files(in: directory).isEmpty)  // no final file, and the temporary files were removed
      // Nothing was cached: the same list without the failure extracts both layers.
      let fixed = SyntheticSource(count: 9)
      #expect(fixed.fingerprint == failing.fingerprint)
      let rerun = try extractor.extract(Self.request([.feature2, .feature5], source: fixed), cache: cache)
      #expect(rerun.computedLayers == [.feature2, .feature5])
    }
  }

  @Test func anUncommittedWriterLeavesOnlyATemporaryFileUntilReleased() throws {
    try withCache { cache, directory, _ in
      let key = FeatureCacheKey(checkpointSHA256: "c", datasetFingerprint: "d", layer: .avgpool,
                                transform: Self.transform, pooling: .adaptive, architecture: ResNetConfig(depth: 18))
      var writer: FeatureCacheWriter? = try cache.makeWriter(for: key, rows: 4, columns: 3)
      try writer!.append(Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
      // What a killed process leaves: a hidden temporary file, never the key's file name.
      let names = try files(in: directory)
      #expect(names.count == 1 && names[0].hasPrefix(".") && names[0].hasSuffix(".tmp"))
      #expect(cache.matrix(for: key, rows: 4, columns: 3) == nil)
      writer = nil
      #expect(try files(in: directory).isEmpty)
      _ = writer
    }
  }

  @Test func temporaryFilesOfDeadProcessesAreRemovedOnOpen() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    // pid 2^22 + 1 is above Linux's pid_max limit (4194304), so no process has it.
    let dead = directory.appendingPathComponent(".feature5-0123.features.4194305.abc.tmp")
    let alive = directory.appendingPathComponent(".feature5-0123.features.\(getpid()).abd.tmp")
    try Data([1]).write(to: dead)
    try Data([1]).write(to: alive)
    _ = try FeatureCache(directory: directory)
    #expect(try files(in: directory) == [alive.lastPathComponent])
  }

  @Test func aCacheDirectoryThatIsAFileIsRefused() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("not-a-directory")
    try Data([1]).write(to: file)
    #expect(throws: FeatureCacheError.unusableDirectory(path: file.path, reason: "it is a file")) {
      try FeatureCache(directory: file)
    }
  }
}

@Suite struct FeatureNPYExportTests {
  @Test func headerIsNumPys() {
    // numpy.lib.format.write_array_header_1_0 for dtype '<f4', shape (3, 2): 118 header bytes → data at 128.
    let header = FeatureMatrix.npyHeader(rows: 3, columns: 2)
    #expect(header.count % 64 == 0)
    #expect(Array(header[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
    #expect(Int(header[8]) + Int(header[9]) << 8 == header.count - 10)
    let text = String(decoding: header[10...], as: UTF8.self)
    #expect(text.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }") && text.hasSuffix(" \n"))
  }

  @Test func exportWritesTheHeaderThenTheRows() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let matrix = FeatureMatrix(rows: 3, columns: 2, scalars: [1, -2, 3.5, 0, 1e-3, 7])
    let url = directory.appendingPathComponent("feature5.npy")
    try matrix.writeNPY(to: url)
    let bytes = [UInt8](try Data(contentsOf: url))
    let header = FeatureMatrix.npyHeader(rows: 3, columns: 2)
    #expect(Array(bytes.prefix(header.count)) == header)
    let values = bytes[header.count...].withUnsafeBytes { raw in
      (0..<6).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
    }
    #expect(values == [1, -2, 3.5, 0, 1e-3, 7])
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["feature5.npy"])
  }
}
