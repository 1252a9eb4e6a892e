// Hostile checkpoints (issue 14, items 1–3): each class of input that crashed, hung or exhausted memory on main
// before the hardening, now a typed error naming the file and the limit, within a time bound.
import Foundation
import Testing
@testable import Checkpoints

private func unpickle(_ program: [UInt8]) throws -> PickleDocument {
  var unpickler = TorchUnpickler(program, path: "hostile.pkl")
  return try unpickler.load()
}

private func decode(_ archive: [UInt8]) throws -> PyTorchCheckpoint {
  try PyTorchCheckpoint(decoding: Data(archive), path: "hostile.pth")
}

/// Runs `body`, which must throw within `seconds`; returns the error.
private func error(within seconds: Int = 5, sourceLocation: SourceLocation = #_sourceLocation,
                   _ body: () throws -> Void) -> Error? {
  let start = ContinuousClock.now
  defer {
    let elapsed = ContinuousClock.now - start
    #expect(elapsed < .seconds(seconds), "took \(elapsed)", sourceLocation: sourceLocation)
  }
  do {
    try body()
  } catch {
    return error
  }
  Issue.record("no error", sourceLocation: sourceLocation)
  return nil
}

private func limit(of error: Error?) -> PyTorchCheckpointError.Limit? {
  guard case .limitExceeded(_, let limit, _)? = error as? PyTorchCheckpointError else { return nil }
  return limit
}

@Suite struct HostileCheckpointTests {
  // MARK: 1. Depth and aliasing

  /// On main: signal 11 (the 100,000-deep tuple's recursive destruction, or its hashing as a dict key).
  @Test func deeplyNestedTuplesAreRefusedBeforeTheyAreBuilt() {
    let nested = [0x4e] + [UInt8](repeating: 0x85, count: 100_000)  // NONE, TUPLE1 × 100,000
    let caught = error { _ = try unpickle(pickleProgram(nested)) }
    #expect(limit(of: caught) == .nestingDepth(100))
    #expect("\(caught!)".contains("hostile.pkl") && "\(caught!)".contains("100 levels of nesting"))
    // The same tuple as a dict key: {((((None,),),),): None}.
    let asKey = [0x7d] + nested + [0x4e, 0x73]
    #expect(limit(of: error { _ = try unpickle(pickleProgram(asKey)) }) == .nestingDepth(100))
    // 100 levels are fine (a state dict is a handful deep).
    #expect(throws: Never.self) { _ = try unpickle(pickleProgram([0x4e] + [UInt8](repeating: 0x85, count: 100))) }
  }

  /// On main: succeeds instantly here, then any walk, hash or description of the value takes 2^60 steps.
  @Test func tuplesHoldingThePreviousOneTwiceAreRefused() {
    // [None, (None, None), ((None, None), (None, None)), …]: each tuple is memo entry 0 twice, 60 levels.
    var body: [UInt8] = [0x5d, 0x4e, 0x71, 0x00, 0x61]  // EMPTY_LIST, NONE, BINPUT 0, APPEND
    for _ in 0..<60 { body += [0x68, 0x00, 0x68, 0x00, 0x86, 0x71, 0x00, 0x61] }  // BINGET 0 ×2, TUPLE2, BINPUT 0, APPEND
    let caught = error { _ = try unpickle(pickleProgram(body)) }
    #expect(limit(of: caught) == .valueCount(PickleLimits.maximumValueCount))
  }

  /// On main: the walk expands 2^40 paths (minutes, gigabytes of names).
  @Test func listsHoldingThePreviousOneTwiceStopTheWalk() {
    // The root list holds list_40; list_i holds list_{i-1} twice; list_0 holds None.
    var body: [UInt8] = [0x5d, 0x4e, 0x61, 0x71, 0x00]  // EMPTY_LIST, NONE, APPEND, BINPUT 0
    for _ in 0..<40 { body += [0x5d, 0x28, 0x68, 0x00, 0x68, 0x00, 0x65, 0x71, 0x00] }  // [m0, m0], BINPUT 0
    let program = pickleProgram([0x28] + body + [0x74])  // MARK … TUPLE: the 41 lists left on the stack
    let caught = error(within: 20) { _ = try decode(HostileArchive.torchArchive(pickle: program)) }
    #expect(limit(of: caught) == .valueCount(PickleLimits.maximumValueCount))
  }

  /// Lists nested deeper than the limit: the walk stops at 100 levels with the limit named.
  @Test func deeplyNestedListsStopTheWalk() {
    // [[[…[None]…]]] 1,000 deep: EMPTY_LIST × 1,000, NONE, APPEND × 1,000.
    let body = [UInt8](repeating: 0x5d, count: 1000) + [0x4e] + [UInt8](repeating: 0x61, count: 1000)
    let caught = error { _ = try decode(HostileArchive.torchArchive(pickle: pickleProgram(body))) }
    #expect(limit(of: caught) == .nestingDepth(100))
  }

  @Test func bigTupleKeysAreRefused() {
    // {(None,) * 65: None}: keys are hashed on every SETITEM, so they stay small.
    let key = [0x28] + [UInt8](repeating: 0x4e, count: 65) + [0x74]
    let caught = error { _ = try unpickle(pickleProgram([0x7d] + key + [0x4e, 0x73])) }
    guard case .corruptPickle(_, _, let reason)? = caught as? PyTorchCheckpointError else {
      Issue.record("\(String(describing: caught))"); return
    }
    #expect(reason.contains("more than 64 values"))
  }

  // MARK: 2. Declared sizes

  /// On main: 2^31 elements of stride 0 allocate and write 8 GiB for a file of a few hundred bytes; 2^62 traps.
  @Test(arguments: [[1 << 31], [1 << 62], [1 << 20, 1 << 20]])
  func stride0ViewsThatRepeatTooManyElementsAreRefused(shape: [Int]) {
    let pickle = hostileTensorPickle(count: 1, shape: shape, strides: shape.map { _ in 0 })
    let caught = error { _ = try decode(HostileArchive.torchArchive(pickle: pickle, storages: [("0", [0, 0, 128, 63])])) }
    #expect(limit(of: caught) == .repeatedElements(1 << 24))
    #expect("\(caught!)".contains("tensor 'w'"))
  }

  @Test func broadcastViewsWithinTheBudgetAreMaterialised() throws {
    // expand(): storage [1.0], size (3, 2), stride (0, 0) → six ones, as torch rebuilds it.
    let pickle = hostileTensorPickle(count: 1, shape: [3, 2], strides: [0, 0])
    let file = try decode(HostileArchive.torchArchive(pickle: pickle, storages: [("0", [0, 0, 128, 63])]))
    #expect(file.tensors["w"]?.value.scalars == [1, 1, 1, 1, 1, 1])
  }

  @Test(arguments: [
    ([1 << 62, 4], [4, 1], 1),  // 2^64 elements: the element count overflows
    ([1 << 62], [1], 1 << 62),  // a storage of 2^62 float32 = 2^64 bytes
    ([2], [1 << 62], 4),  // the last element's index overflows
    ([2], [1], 1 << 40),  // 4 TiB declared by the persistent id, 4 bytes in the record
  ] as [([Int], [Int], Int)])
  func overflowingSizesAndStridesAreInvalidTensors(shape: [Int], strides: [Int], count: Int) {
    let pickle = hostileTensorPickle(count: count, shape: shape, strides: strides)
    let caught = error { _ = try decode(HostileArchive.torchArchive(pickle: pickle, storages: [("0", [0, 0, 0, 0])])) }
    guard case .invalidTensor(let path, "w", _)? = caught as? CheckpointError else {
      Issue.record("\(String(describing: caught))"); return
    }
    #expect(path == "hostile.pth")
  }

  /// On main: `shape.product` and `dataStart + end` trap on overflow.
  @Test(arguments: [
    #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#,
    #"{"w":{"dtype":"U8","shape":[9223372036854775807],"data_offsets":[0,9223372036854775807]}}"#,
    #"{"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0]}}"#,
  ])
  func safetensorsShapesThatOverflowAreErrors(header: String) {
    let json = Array(header.utf8)
    let file = HostileArchive.le32(UInt32(json.count)) + [0, 0, 0, 0] + json
    let caught = error { _ = try SafeTensors(decoding: Data(file), path: "hostile.safetensors") }
    #expect(caught is CheckpointError && "\(caught!)".contains("hostile.safetensors"))
  }

  // MARK: 3. Decompression

  /// On main: the whole stream is inflated before the mismatch is noticed (1.9 GiB for a small file).
  @Test func aRecordInflatingPastItsDeclaredSizeStopsThere() {
    let pickle = hostileTensorPickle(count: 1, shape: [1], strides: [1])
    let bomb = HostileArchive.Record.deflatedZeros("archive/data/0", zeroCount: 4 << 20, declaredSize: 4)
    let archive = HostileArchive.zip([.stored("archive/data.pkl", pickle), bomb])
    #expect(archive.count < 40_000)
    let caught = error { _ = try decode(archive) }
    guard case .corruptArchive(_, let reason)? = caught as? PyTorchCheckpointError else {
      Issue.record("\(String(describing: caught))"); return
    }
    #expect(reason.contains("inflates to more than the 4 bytes"), "\(reason)")
  }

  /// On main: a data.pkl declared (and inflating) beyond any state dict's is read whole.
  @Test func aDataPklBeyondTheLimitIsRefusedBeforeInflating() {
    let bomb = HostileArchive.Record.deflatedZeros("archive/data.pkl", zeroCount: 1 << 20, declaredSize: 1 << 30)
    let caught = error { _ = try decode(HostileArchive.zip([bomb])) }
    #expect(limit(of: caught) == .pickleBytes(64 << 20))
    #expect("\(caught!)".contains("64 MiB"))
  }

  @Test func deflatedRecordsThatTellTheTruthAreRead() throws {
    // data/0 holds four float32 zeros, deflated; the directory declares 16 bytes.
    let pickle = hostileTensorPickle(count: 4, shape: [4], strides: [1])
    let archive = HostileArchive.zip([.stored("archive/data.pkl", pickle),
                                      .deflatedZeros("archive/data/0", zeroCount: 16, declaredSize: 16)])
    #expect(try decode(archive).tensors["w"]?.value.scalars == [0, 0, 0, 0])
  }

  @Test func recordsOutsideTheFileAreCorruptArchives() {
    // The directory claims data/0 has 1,000 stored bytes; the file ends first.
    let record = HostileArchive.Record.stored("archive/data/0", [0, 0, 128, 63])
    var archive = HostileArchive.zip([.stored("archive/data.pkl", hostileTensorPickle(count: 1, shape: [1],
                                                                                      strides: [1])), record])
    // Patch the central directory's compressed and uncompressed sizes of the last entry (20 and 24 bytes in).
    let directoryEntry = archive.count - 22 - (46 + "archive/data/0".utf8.count)
    archive.replaceSubrange((directoryEntry + 20)..<(directoryEntry + 28), with: HostileArchive.le32(1000)
                              + HostileArchive.le32(1000))
    let caught = error { _ = try decode(archive) }
    #expect(caught is PyTorchCheckpointError || caught is CheckpointError, "\(String(describing: caught))")
  }
}
