import Foundation
import Testing
@testable import Checkpoints

// Hand-assembled pickle programs (opcodes from CPython's Lib/pickletools.py); `python3 -m pickletools` on the
// same bytes disassembles them.

/// BINUNICODE: 'X', a 4-byte little-endian length, UTF-8.
func pickleString(_ text: String) -> [UInt8] {
  let utf8 = Array(text.utf8)
  return [0x58] + withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8
}

/// GLOBAL: 'c', "module\nname\n".
func pickleGlobal(_ module: String, _ name: String) -> [UInt8] {
  [0x63] + Array("\(module)\n\(name)\n".utf8)
}

/// PROTO 2, `body`, STOP.
func pickleProgram(_ body: [UInt8]) -> [UInt8] { [0x80, 0x02] + body + [0x2e] }

private func load(_ program: [UInt8]) throws -> PickleDocument {
  var unpickler = TorchUnpickler(program, path: "test.pkl")
  return try unpickler.load()
}

/// The root dict's entries as (key, value) pairs.
private func entries(_ document: PickleDocument) -> [(PickleValue, PickleValue)] {
  guard case .dict(let id) = document.root else { return [] }
  return Array(zip(document.dicts[id].keys, document.dicts[id].values))
}

@Suite struct PickleTests {
  @Test func decodesScalarsAndContainersOfProtocol2() throws {
    // {'a': 255, 'b': -3, 'c': 513, 'd': 2**40, 'e': 0.5, 'f': (None, True, False), 'g': ['x', 'x'], 'h': ()}
    var body: [UInt8] = [0x7d, 0x71, 0x00, 0x28]  // EMPTY_DICT, BINPUT 0, MARK
    body += pickleString("a") + [0x4b, 0xff]  // BININT1 255
    body += pickleString("b") + [0x4a, 0xfd, 0xff, 0xff, 0xff]  // BININT −3
    body += pickleString("c") + [0x4d, 0x01, 0x02]  // BININT2 513
    body += pickleString("d") + [0x8a, 0x06, 0, 0, 0, 0, 0, 0x01]  // LONG1 2^40
    body += pickleString("e") + [0x47, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]  // BINFLOAT 0.5, big-endian
    body += pickleString("f") + [0x4e, 0x88, 0x89, 0x87]  // NONE NEWTRUE NEWFALSE TUPLE3
    body += pickleString("g") + [0x5d, 0x28] + pickleString("x") + [0x71, 0x01, 0x68, 0x01, 0x65]  // APPENDS, memo
    body += pickleString("h") + [0x29]  // EMPTY_TUPLE
    body += [0x75]  // SETITEMS
    let document = try load(pickleProgram(body))
    let pairs = entries(document)
    #expect(pairs.map(\.0) == ["a", "b", "c", "d", "e", "f", "g", "h"].map(PickleValue.string))
    #expect(pairs.map(\.1).prefix(6) == [.int(255), .int(-3), .int(513), .int(1 << 40), .float(0.5),
                                          .tuple([.none, .bool(true), .bool(false)])])
    guard case .list(let list) = pairs[6].1 else { Issue.record("'g' is not a list"); return }
    #expect(document.lists[list] == [.string("x"), .string("x")])
    #expect(pairs[7].1 == .tuple([]))
  }

  @Test func decodesProtocol4Opcodes() throws {
    // PROTO 4, FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL collections.OrderedDict, BINUNICODE8, TUPLE1,
    // TUPLE2, SETITEM, LONG_BINPUT/LONG_BINGET.
    var program: [UInt8] = [0x80, 0x04, 0x95] + [UInt8](repeating: 0, count: 8)
    program += [0x8c, 11] + Array("collections".utf8) + [0x94]
    program += [0x8c, 11] + Array("OrderedDict".utf8) + [0x94, 0x93, 0x94, 0x29, 0x52, 0x94]  // OrderedDict()
    program += [0x8d, 3, 0, 0, 0, 0, 0, 0, 0] + Array("key".utf8)  // BINUNICODE8 'key'
    program += [0x4b, 7, 0x85, 0x72, 9, 0, 0, 0, 0x6a, 9, 0, 0, 0, 0x86, 0x73, 0x2e]  // ((7,), (7,)) SETITEM STOP
    let pairs = entries(try load(program))
    #expect(pairs.count == 1)
    #expect(pairs.first?.0 == .string("key"))
    #expect(pairs.first?.1 == .tuple([.tuple([.int(7)]), .tuple([.int(7)])]))
  }

  @Test func wideIntegersBecomeDecimalText() throws {
    // LONG1 2**70 (9 bytes) and −2**64 (9 bytes), −1 (1 byte), 2**63 − 1 (8 bytes).
    let body: [UInt8] = [0x28, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40,
                         0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
                         0x8a, 1, 0xff,
                         0x8a, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x74]
    let document = try load(pickleProgram(body))
    #expect(document.root == .tuple([.bigInt("1180591620717411303424"), .bigInt("-18446744073709551616"),
                                     .int(-1), .int(Int.max)]))
  }

  @Test func rebuildsATensorReferenceFromAPersistentID() throws {
    // _rebuild_tensor_v2((‘storage’, torch.HalfStorage, '0', 'cpu', 6), 1, (2, 2), (1, 2), False, OrderedDict())
    var body = pickleGlobal("torch._utils", "_rebuild_tensor_v2") + [0x28, 0x28] + pickleString("storage")
    body += pickleGlobal("torch", "HalfStorage") + pickleString("0") + pickleString("cpu") + [0x4b, 6, 0x74, 0x51]
    body += [0x4b, 1, 0x4b, 2, 0x4b, 2, 0x86, 0x4b, 1, 0x4b, 2, 0x86, 0x89]
    body += pickleGlobal("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52]
    let document = try load(pickleProgram(body))
    let storage = StorageReference(key: "0", dtype: .f16, elementCount: 6)
    #expect(document.root == .tensor(TensorReference(storage: storage, storageOffset: 1, shape: [2, 2],
                                                     strides: [1, 2])))
  }

  @Test(arguments: [("posix", "system"), ("os", "system"), ("builtins", "eval"), ("__builtin__", "eval"),
                    ("torch", "load"), ("torch._utils", "_rebuild_device_tensor_from_numpy"),
                    ("collections", "defaultdict"), ("torch", "ComplexFloatStorage")])
  func refusesEveryOtherGlobal(module: String, name: String) {
    // {'x': module.name('touch /tmp/…')}: refused when the GLOBAL is read, before anything could be called.
    let body = [0x7d, 0x28] + pickleString("x") + pickleGlobal(module, name) + pickleString("touch /tmp/pwned")
      + [0x85, 0x52, 0x75]
    #expect(throws: PyTorchCheckpointError.refusedGlobal(path: "test.pkl", name: "\(module).\(name)")) {
      try load(pickleProgram(body))
    }
  }

  @Test func refusesAStackGlobalToo() {
    let body: [UInt8] = [0x8c, 8] + Array("builtins".utf8) + [0x8c, 4] + Array("eval".utf8) + [0x93]
    #expect(throws: PyTorchCheckpointError.refusedGlobal(path: "test.pkl", name: "builtins.eval")) {
      try load([0x80, 0x04] + body + [0x2e])
    }
  }

  @Test func refusesToCallAnythingButTheRebuildFunctions() {
    // torch.FloatStorage() (an allowed global, but not a callable we interpret), 'eval'(…), and BUILD on a dict.
    let cases: [([UInt8], String)] = [
      (pickleGlobal("torch", "FloatStorage") + [0x29, 0x52], "torch.FloatStorage"),
      (pickleString("eval") + pickleString("1") + [0x85, 0x52], "'eval'"),
      ([0x7d, 0x7d, 0x62], "BUILD (__setstate__) on a dict"),
    ]
    for (body, callable) in cases {
      #expect(throws: PyTorchCheckpointError.refusedCall(path: "test.pkl", callable: callable)) {
        try load(pickleProgram(body))
      }
    }
  }

  @Test func acceptsBuildOnAnOrderedDict() throws {
    // state_dict() carries `_metadata` set through BUILD; it is ignored.
    let body = pickleGlobal("collections", "OrderedDict") + [0x29, 0x52, 0x7d] + pickleString("_metadata")
      + [0x7d, 0x73, 0x62]
    let document = try load(pickleProgram(body))
    guard case .dict(let id) = document.root else { Issue.record("root is not a dict"); return }
    #expect(document.dicts[id].isOrderedDict && document.dicts[id].keys.isEmpty)
  }

  @Test(arguments: [
    ([0x80, 0x02, 0x4b], "ends in the middle"),  // BININT1 without its byte
    ([0x80, 0x02, 0x4e], "ends in the middle"),  // no STOP
    ([0x80, 0x06, 0x4e, 0x2e], "protocol 6"),
    ([0x80, 0x02, 0x69, 0x2e], "opcode 0x69"),  // INST
    ([0x80, 0x02, 0x81, 0x2e], "opcode 0x81"),  // NEWOBJ
    ([0x80, 0x02, 0x68, 0x05, 0x2e], "memo entry 5"),
    ([0x80, 0x02, 0x2e], "stack is empty"),
    ([0x80, 0x02, 0x4e, 0x4e, 0x4b, 0x01, 0x73, 0x2e], "SETITEM(S) applies to a dict only"),
    ([0x80, 0x02, 0x7d, 0x5d, 0x4e, 0x73, 0x2e], "a dict key is a list"),
    ([0x80, 0x02, 0x4e, 0x4e, 0x2e], "left on the stack"),
    ([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e], "ends in the middle"),  // a 2 GB string in 8 bytes
    ([0x80, 0x02, 0x4e, 0x28, 0x4e, 0x86, 0x2e], "TUPLE2 needs 2 values"),  // may not reach below a MARK
  ] as [([UInt8], String)])
  func malformedProgramsAreErrorsNotCrashes(program: [UInt8], reason: String) {
    do {
      _ = try load(program)
      Issue.record("accepted a malformed program")
    } catch let error as PyTorchCheckpointError {
      guard case .corruptPickle(_, _, let message) = error else { Issue.record("\(error)"); return }
      #expect(message.contains(reason), "\(message)")
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }
}
