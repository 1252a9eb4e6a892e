// A restricted pickle reader for what `torch.save` writes for state dicts and the dicts holding them
// (pickle protocols 2–5, opcodes as documented in CPython's Lib/pickletools.py). It never imports, calls or
// instantiates anything: the few globals torch needs are recognised by name and interpreted here.

/// Bounds on what an untrusted data.pkl may make the reader build or walk (issue 14). A torch state dict is a
/// handful of levels deep and a ResNet-50 training checkpoint's pickle pushes about 20,000 values, so only hostile
/// or broken files reach them; each is refused with `PyTorchCheckpointError.limitExceeded` naming the limit.
public enum PickleLimits {
  /// Tuples inside tuples while unpickling (checked before a deeper value exists: deep Swift enums overflow the
  /// stack when hashed or destroyed), and dicts, lists and tuples inside each other when flattening.
  public static let maximumDepth = 100
  /// Values the pickle program may push; values one tuple expands to, a memo reference counted each time it is
  /// used (saturating); and values the flattening walk may visit (a shared container is walked once per path).
  public static let maximumValueCount = 1_000_000
  /// Values a tuple used as a dict key expands to (state dicts are keyed by strings and integers; keys are
  /// hashed and compared on every SETITEM, so their size must stay small).
  public static let maximumKeyValueCount = 64
  /// Bytes of data.pkl once inflated (a ResNet-50 training checkpoint's is about 100 KB).
  public static let maximumPickleByteCount = 64 << 20
}

/// A value on the pickle stack. Lists and dictionaries live in the `PickleDocument`'s arenas (mutable, shared
/// by reference through the memo, and free of reference cycles for ARC whatever the input). Tuples nest at most
/// `PickleLimits.maximumDepth` deep (the unpickler checks before building one).
enum PickleValue: Hashable {
  case none
  case bool(Bool)
  case int(Int)
  /// A LONG1 integer wider than 64 bits, as decimal text.
  case bigInt(String)
  case float(Double)
  case string(String)
  case tuple([PickleValue])
  /// Index into `PickleDocument.lists`.
  case list(Int)
  /// Index into `PickleDocument.dicts`.
  case dict(Int)
  case global(TorchGlobal)
  // Boxed: keeps the enum (and the unpickler's stack) small.
  indirect case storage(StorageReference)
  indirect case tensor(TensorReference)
}

/// The only globals the reader accepts, by their pickled `module.name`.
enum TorchGlobal: Hashable {
  case rebuildTensorV2, rebuildParameter, orderedDict
  case storage(SafeTensorsDType)

  /// `torch.FloatStorage` … as torch.save (2.x, and 1.6+ zip files) names a storage's element type.
  static let storageTypes: [String: SafeTensorsDType] = [
    "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
    "LongStorage": .i64, "IntStorage": .i32,
  ]

  init?(module: String, name: String) {
    switch (module, name) {
    case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
    case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
    case ("collections", "OrderedDict"): self = .orderedDict
    case ("torch", _):
      guard let dtype = TorchGlobal.storageTypes[name] else { return nil }
      self = .storage(dtype)
    default: return nil
    }
  }

  var qualifiedName: String {
    switch self {
    case .rebuildTensorV2: "torch._utils._rebuild_tensor_v2"
    case .rebuildParameter: "torch._utils._rebuild_parameter"
    case .orderedDict: "collections.OrderedDict"
    case .storage(let dtype): "torch." + TorchGlobal.storageTypes.first { $0.value == dtype }!.key
    }
  }
}

/// A storage named by a persistent id: record `data/<key>` of the archive, `elementCount` elements of `dtype`.
struct StorageReference: Hashable {
  var key: String
  var dtype: SafeTensorsDType
  var elementCount: Int
}

/// A strided view of a storage, as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` builds it.
struct TensorReference: Hashable {
  var storage: StorageReference
  /// In elements.
  var storageOffset: Int
  var shape: [Int]
  /// In elements.
  var strides: [Int]
}

/// An ordered dictionary (Python dicts keep insertion order); a repeated key replaces the value in place.
struct PickleDict {
  var keys: [PickleValue] = []
  var values: [PickleValue] = []
  var indexOfKey: [PickleValue: Int] = [:]
  /// Made by `collections.OrderedDict()` (the only object BUILD may set attributes on).
  var isOrderedDict = false

  mutating func set(_ key: PickleValue, _ value: PickleValue) {
    if let index = indexOfKey[key] {
      values[index] = value
    } else {
      indexOfKey[key] = keys.count
      keys.append(key)
      values.append(value)
    }
  }
}

/// The unpickled object graph: the root value and the containers it refers to.
struct PickleDocument {
  var root: PickleValue
  var lists: [[PickleValue]]
  var dicts: [PickleDict]
}

/// A stack or memo entry: the value with its tuple nesting depth and expanded size, known before any tuple
/// holding it is built (lists and dicts are arena references: depth 0, size 1 here).
private struct WeighedValue {
  var value: PickleValue
  /// Tuples inside tuples: 0 for anything but a tuple.
  var depth = 0
  /// Values it expands to, each memo reference counted in full, saturating above `PickleLimits.maximumValueCount`.
  var size = 1
}

/// The pickle virtual machine, restricted to what torch.save writes (see the file header).
///
/// Hostile programs are bounded (`PickleLimits`): every push is counted, a tuple's depth and expanded size are
/// computed from its items' before it is built, and dict keys stay small, so no operation recurses deeply or
/// walks an exponentially aliased value.
struct TorchUnpickler {
  /// Names the source in errors.
  let path: String
  private let bytes: [UInt8]
  private var position = 0
  private var stack: [WeighedValue] = []
  /// Stack heights at each open MARK.
  private var marks: [Int] = []
  private var memo: [Int: WeighedValue] = [:]
  private var lists: [[PickleValue]] = []
  private var dicts: [PickleDict] = []
  /// Values pushed so far (bounded by `PickleLimits.maximumValueCount`).
  private var pushedCount = 0
  /// Where the current opcode starts, for error messages.
  private var opcodeStart = 0

  init<Bytes: Sequence<UInt8>>(_ bytes: Bytes, path: String) {
    self.bytes = Array(bytes)
    self.path = path
  }

  /// Runs the program to its STOP opcode.
  mutating func load() throws -> PickleDocument {
    while true {
      opcodeStart = position
      let opcode = try readByte()
      switch opcode {
      case 0x80:  // PROTO
        let version = try readByte()
        guard (2...5).contains(version) else { throw malformed("pickle protocol \(version) is not 2–5") }
      case 0x95:  // FRAME: an 8-byte length; frames are only a buffering hint.
        let length = try readUInt(8)
        guard length <= UInt64(bytes.count - position) else { throw malformed("a frame runs past the end") }
      case 0x2e:  // STOP
        let root = try pop().value
        guard stack.isEmpty, marks.isEmpty else { throw malformed("values are left on the stack at STOP") }
        return PickleDocument(root: root, lists: lists, dicts: dicts)

      // MARK: Constants
      case 0x4e: try push(.none)  // NONE
      case 0x88: try push(.bool(true))  // NEWTRUE
      case 0x89: try push(.bool(false))  // NEWFALSE
      case 0x4b: try push(.int(Int(try readUInt(1))))  // BININT1
      case 0x4d: try push(.int(Int(try readUInt(2))))  // BININT2
      case 0x4a: try push(.int(Int(Int32(truncatingIfNeeded: try readUInt(4)))))  // BININT
      case 0x8a: try push(try readLong1())  // LONG1
      case 0x47:  // BINFLOAT: big-endian IEEE 754 double
        var bits: UInt64 = 0
        for byte in try read(8) { bits = bits << 8 | UInt64(byte) }
        try push(.float(Double(bitPattern: bits)))
      case 0x58: try push(.string(try readString(lengthBytes: 4)))  // BINUNICODE
      case 0x8c: try push(.string(try readString(lengthBytes: 1)))  // SHORT_BINUNICODE
      case 0x8d: try push(.string(try readString(lengthBytes: 8)))  // BINUNICODE8

      // MARK: Containers
      case 0x29: try pushTuple([])  // EMPTY_TUPLE
      case 0x5d:  // EMPTY_LIST
        try push(.list(lists.count))
        lists.append([])
      case 0x7d:  // EMPTY_DICT
        try push(.dict(dicts.count))
        dicts.append(PickleDict())
      case 0x28: marks.append(stack.count)  // MARK
      case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
        let count = Int(opcode - 0x84)
        guard stack.count - (marks.last ?? 0) >= count else { throw malformed("TUPLE\(count) needs \(count) values") }
        let items = Array(stack.suffix(count))
        stack.removeLast(count)
        try pushTuple(items)
      case 0x74: try pushTuple(try popToMark())  // TUPLE
      case 0x61:  // APPEND
        let item = try pop()
        try appendToList([item])
      case 0x65:  // APPENDS
        let items = try popToMark()
        try appendToList(items)
      case 0x73:  // SETITEM
        let value = try pop()
        let key = try pop()
        try setItems([key, value])
      case 0x75:  // SETITEMS
        let items = try popToMark()
        guard items.count % 2 == 0 else { throw malformed("SETITEMS has an odd number of values") }
        try setItems(items)

      // MARK: Memo
      case 0x71: memo[Int(try readUInt(1))] = try top()  // BINPUT
      case 0x72: memo[Int(try readUInt(4))] = try top()  // LONG_BINPUT
      case 0x94: memo[memo.count] = try top()  // MEMOIZE
      case 0x68, 0x6a:  // BINGET, LONG_BINGET: the memo's value itself, shared (its size is counted, not copied)
        let index = Int(try readUInt(opcode == 0x68 ? 1 : 4))
        guard let entry = memo[index] else { throw malformed("memo entry \(index) is read before it is written") }
        try push(entry)

      // MARK: Globals and objects
      case 0x63:  // GLOBAL "module\nname\n"
        let module = try readLine()
        let name = try readLine()
        try push(.global(try resolve(module: module, name: name)))
      case 0x93:  // STACK_GLOBAL
        let name = try pop().value
        let module = try pop().value
        guard case .string(let nameText) = name, case .string(let moduleText) = module else {
          throw malformed("STACK_GLOBAL needs two strings")
        }
        try push(.global(try resolve(module: moduleText, name: nameText)))
      case 0x52:  // REDUCE
        let arguments = try pop().value
        let callable = try pop().value
        try push(try reduce(callable, arguments))
      case 0x62:  // BUILD
        let state = try pop().value
        try build(try top().value, state: state)
      case 0x51:  // BINPERSID
        try push(try persistentLoad(try pop().value))

      default:
        throw malformed("opcode 0x\(String(opcode, radix: 16)) is not one torch.save writes for a state dict")
      }
    }
  }

  // MARK: - Reading bytes

  private mutating func readByte() throws -> UInt8 {
    guard position < bytes.count else { throw truncated() }
    position += 1
    return bytes[position - 1]
  }

  private mutating func read(_ count: Int) throws -> ArraySlice<UInt8> {
    guard count >= 0, count <= bytes.count - position else { throw truncated() }
    position += count
    return bytes[(position - count)..<position]
  }

  /// A little-endian unsigned integer of `count` bytes.
  private mutating func readUInt(_ count: Int) throws -> UInt64 {
    var value: UInt64 = 0
    for (shift, byte) in try read(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
    return value
  }

  private mutating func readString(lengthBytes: Int) throws -> String {
    let length = try readUInt(lengthBytes)
    guard length <= UInt64(bytes.count - position) else { throw truncated() }
    let utf8 = try read(Int(length))
    guard let text = String(validating: utf8, as: UTF8.self) else { throw malformed("a string is not valid UTF-8") }
    return text
  }

  /// A line of GLOBAL's argument, without its newline.
  private mutating func readLine() throws -> String {
    guard let end = bytes[position...].firstIndex(of: 0x0a) else { throw truncated() }
    let line = try read(end - position)
    position += 1
    guard let text = String(validating: line, as: UTF8.self) else { throw malformed("a global's name is not UTF-8") }
    return text
  }

  /// LONG1: a length byte, then a little-endian two's-complement integer.
  private mutating func readLong1() throws -> PickleValue {
    let digits = Array(try read(Int(try readByte())))
    guard let last = digits.last else { return .int(0) }
    let isNegative = last & 0x80 != 0
    // Fits in Int64 when every byte above the 8th only repeats the sign of the low 8 bytes.
    let signByte: UInt8 = isNegative ? 0xff : 0
    let fitsInt64 = digits.count <= 8
      || (digits[8...].allSatisfy { $0 == signByte } && (digits[7] & 0x80 != 0) == isNegative)
    if fitsInt64 {
      var value: UInt64 = isNegative ? .max : 0  // sign-extended, then the low bytes overwritten
      for (shift, byte) in digits.prefix(8).enumerated() {
        value &= ~(UInt64(0xff) << (8 * UInt64(shift)))
        value |= UInt64(byte) << (8 * UInt64(shift))
      }
      return .int(Int(Int64(bitPattern: value)))
    }
    return .bigInt(decimalText(twosComplementLittleEndian: digits))
  }

  // MARK: - Stack

  private func top() throws -> WeighedValue {
    guard let value = stack.last, stack.count > (marks.last ?? 0) else { throw malformed("the stack is empty") }
    return value
  }

  private mutating func pop() throws -> WeighedValue {
    let value = try top()
    stack.removeLast()
    return value
  }

  /// Pushes a value that holds no tuple (depth 0, size 1).
  private mutating func push(_ value: PickleValue) throws {
    try push(WeighedValue(value: value))
  }

  private mutating func push(_ entry: WeighedValue) throws {
    pushedCount += 1
    guard pushedCount <= PickleLimits.maximumValueCount else {
      throw limitExceeded(.valueCount(PickleLimits.maximumValueCount), "the program pushes more values")
    }
    stack.append(entry)
  }

  /// Builds a tuple of `items` once its depth and expanded size are known to be within `PickleLimits`.
  private mutating func pushTuple(_ items: [WeighedValue]) throws {
    var depth = 0, size = 1
    for item in items {
      depth = max(depth, item.depth)
      size = min(size + item.size, PickleLimits.maximumValueCount + 1)  // saturating: sizes may double per level
    }
    depth += 1
    guard depth <= PickleLimits.maximumDepth else {
      throw limitExceeded(.nestingDepth(PickleLimits.maximumDepth), "tuples are nested deeper")
    }
    guard size <= PickleLimits.maximumValueCount else {
      throw limitExceeded(.valueCount(PickleLimits.maximumValueCount),
                          "a tuple expands to more values (memo references to the same value count each time)")
    }
    try push(WeighedValue(value: .tuple(items.map(\.value)), depth: depth, size: size))
  }

  private mutating func popToMark() throws -> [WeighedValue] {
    guard let mark = marks.popLast() else { throw malformed("no MARK is open") }
    let items = Array(stack[mark...])
    stack.removeLast(stack.count - mark)
    return items
  }

  private mutating func appendToList(_ items: [WeighedValue]) throws {
    guard case .list(let id) = try top().value else { throw malformed("APPEND(S) applies to a list only") }
    lists[id].append(contentsOf: items.lazy.map(\.value))
  }

  private mutating func setItems(_ items: [WeighedValue]) throws {
    guard case .dict(let id) = try top().value else { throw malformed("SETITEM(S) applies to a dict only") }
    for pair in stride(from: 0, to: items.count, by: 2) {
      let key = items[pair]
      guard key.size <= PickleLimits.maximumKeyValueCount else {
        throw malformed("a dict key is a tuple of more than \(PickleLimits.maximumKeyValueCount) values")
      }
      guard isHashable(key.value) else { throw malformed("a dict key is a list or dict") }
      dicts[id].set(key.value, items[pair + 1].value)
    }
  }

  /// Python refuses lists and dicts (and tuples holding them) as dict keys.
  private func isHashable(_ value: PickleValue) -> Bool {
    switch value {
    case .list, .dict: false
    case .tuple(let items): items.allSatisfy(isHashable)
    default: true
    }
  }
  // MARK: - Globals, calls and persistent ids

  private func resolve(module: String, name: String) throws -> TorchGlobal {
    guard let global = TorchGlobal(module: module, name: name) else {
      throw PyTorchCheckpointError.refusedGlobal(path: path, name: "\(module).\(name)")
    }
    return global
  }

  /// REDUCE: `callable(*arguments)` for the three allowed callables, interpreted here.
  private mutating func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
    guard case .global(let global) = callable else {
      throw PyTorchCheckpointError.refusedCall(path: path, callable: describe(callable))
    }
    guard case .tuple(let arguments) = arguments else { throw malformed("REDUCE's arguments are not a tuple") }
    switch global {
    case .orderedDict:
      guard arguments.isEmpty else { throw malformed("collections.OrderedDict is called with arguments") }
      var dict = PickleDict()
      dict.isOrderedDict = true
      dicts.append(dict)
      return .dict(dicts.count - 1)
    case .rebuildTensorV2:
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      guard arguments.count == 6 || arguments.count == 7,
            case .storage(let storage) = arguments[0], case .int(let offset) = arguments[1],
            let shape = integers(arguments[2]), let strides = integers(arguments[3]), shape.count == strides.count,
            case .bool = arguments[4]
      else { throw malformed("_rebuild_tensor_v2 has unexpected arguments \(arguments.map { describe($0) })") }
      return .tensor(TensorReference(storage: storage, storageOffset: offset, shape: shape, strides: strides))
    case .rebuildParameter:
      // (data, requires_grad, backward_hooks)
      guard arguments.count == 3, case .tensor = arguments[0], case .bool = arguments[1] else {
        throw malformed("_rebuild_parameter has unexpected arguments \(arguments.map { describe($0) })")
      }
      return arguments[0]
    case .storage:
      throw PyTorchCheckpointError.refusedCall(path: path, callable: global.qualifiedName)
    }
  }

  /// BUILD: only an OrderedDict's attributes (state dicts carry `_metadata` with module versions), ignored.
  private func build(_ object: PickleValue, state: PickleValue) throws {
    guard case .dict(let id) = object, dicts[id].isOrderedDict else {
      throw PyTorchCheckpointError.refusedCall(path: path, callable: "BUILD (__setstate__) on \(describe(object))")
    }
    switch state {
    case .dict, .none: break
    default: throw malformed("an OrderedDict's BUILD state is \(describe(state)), not a dict")
    }
  }

  /// BINPERSID: torch's `('storage', torch.FloatStorage, key, location, numel)`.
  private func persistentLoad(_ id: PickleValue) throws -> PickleValue {
    guard case .tuple(let fields) = id, fields.count == 5, fields[0] == .string("storage"),
          case .global(.storage(let dtype)) = fields[1], case .string(let key) = fields[2],
          case .string = fields[3], case .int(let count) = fields[4], count >= 0
    else { throw malformed("a persistent id is \(describe(id)), not ('storage', type, key, location, numel)") }
    return .storage(StorageReference(key: key, dtype: dtype, elementCount: count))
  }

  private func integers(_ value: PickleValue) -> [Int]? {
    guard case .tuple(let items) = value else { return nil }
    var result: [Int] = []
    for item in items {
      guard case .int(let number) = item else { return nil }
      result.append(number)
    }
    return result
  }

  /// A short description for error messages: at most 6 items of a tuple, tuples below the third level as "(…)".
  private func describe(_ value: PickleValue, level: Int = 0) -> String {
    switch value {
    case .none: "None"
    case .bool(let flag): flag ? "True" : "False"
    case .int(let number): "\(number)"
    case .bigInt(let text): text
    case .float(let number): "\(number)"
    case .string(let text): "'\(text.prefix(40))'"
    case .tuple(let items):
      level >= 3 ? "(…)" : "(" + items.prefix(6).map { describe($0, level: level + 1) }.joined(separator: ", ")
        + (items.count > 6 ? ", …)" : ")")
    case .list: "a list"
    case .dict: "a dict"
    case .global(let global): global.qualifiedName
    case .storage(let storage): "a \(storage.dtype.rawValue) storage"
    case .tensor: "a tensor"
    }
  }

  // MARK: - Errors

  private func malformed(_ reason: String) -> PyTorchCheckpointError {
    .corruptPickle(path: path, offset: opcodeStart, reason: reason)
  }

  private func limitExceeded(_ limit: PyTorchCheckpointError.Limit, _ found: String) -> PyTorchCheckpointError {
    .limitExceeded(path: path, limit: limit, found: "data.pkl at byte \(opcodeStart): " + found)
  }

  private func truncated() -> PyTorchCheckpointError {
    .corruptPickle(path: path, offset: opcodeStart, reason: "data.pkl ends in the middle of an opcode")
  }
}

/// The decimal text of a little-endian two's-complement integer of any width.
private func decimalText(twosComplementLittleEndian digits: [UInt8]) -> String {
  let isNegative = (digits.last ?? 0) & 0x80 != 0
  var magnitude = digits
  if isNegative {  // negate: invert and add one
    var carry = 1
    for i in magnitude.indices {
      let sum = Int(~magnitude[i]) + carry
      magnitude[i] = UInt8(sum & 0xff)
      carry = sum >> 8
    }
  }
  var text: [Character] = []
  while magnitude.contains(where: { $0 != 0 }) {  // repeated division by 10, most significant byte first
    var remainder = 0
    for i in magnitude.indices.reversed() {
      let current = remainder << 8 | Int(magnitude[i])
      magnitude[i] = UInt8(current / 10)
      remainder = current % 10
    }
    text.append(Character(String(remainder)))
  }
  return (isNegative ? "-" : "") + (text.isEmpty ? "0" : String(text.reversed()))
}
