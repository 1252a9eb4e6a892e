// A pickle writer (protocol 2) for the subset torch.save uses for state dicts, so that
// `torch.load(f, weights_only=True)` accepts the output (opcodes as in CPython's Lib/pickletools.py); protocol 3
// adds raw bytes (BINBYTES) for the numpy arrays of the detectron2 converter (Detectron2Converter.swift).

/// Appends pickle opcodes to `bytes`.
struct PickleWriter {
  private(set) var bytes: [UInt8]

  /// Starts with PROTO `protocolVersion`: 2 for torch.save's data.pkl, 3 when `binaryBytes` is used.
  init(protocolVersion: UInt8 = 2) {
    precondition(protocolVersion == 2 || protocolVersion == 3,
                 "PickleWriter writes protocol 2 or 3, not \(protocolVersion).")
    bytes = [0x80, protocolVersion]  // PROTO
  }

  mutating func stop() { bytes.append(0x2e) }  // STOP
  mutating func mark() { bytes.append(0x28) }  // MARK
  mutating func tupleFromMark() { bytes.append(0x74) }  // TUPLE
  mutating func emptyTuple() { bytes.append(0x29) }  // EMPTY_TUPLE
  mutating func emptyDict() { bytes.append(0x7d) }  // EMPTY_DICT
  mutating func setItemsFromMark() { bytes.append(0x75) }  // SETITEMS
  mutating func reduce() { bytes.append(0x52) }  // REDUCE
  mutating func persistentID() { bytes.append(0x51) }  // BINPERSID
  mutating func bool(_ value: Bool) { bytes.append(value ? 0x88 : 0x89) }  // NEWTRUE / NEWFALSE
  mutating func none() { bytes.append(0x4e) }  // NONE
  mutating func build() { bytes.append(0x62) }  // BUILD: obj.__setstate__(state)

  /// BINBYTES (protocol 3): a 4-byte little-endian length, then the bytes.
  mutating func binaryBytes(_ data: some Collection<UInt8>) {
    precondition(bytes[1] >= 3, "BINBYTES needs pickle protocol 3; this writer started with protocol \(bytes[1]).")
    precondition(data.count <= Int(UInt32.max), "BINBYTES holds at most 4 GiB, got \(data.count) bytes.")
    bytes.append(0x42)
    append(littleEndian: UInt32(data.count), byteCount: 4)
    bytes += data
  }

  /// GLOBAL "module\nname\n".
  mutating func global(_ module: String, _ name: String) {
    bytes.append(0x63)
    bytes += Array(module.utf8) + [0x0a] + Array(name.utf8) + [0x0a]
  }

  /// BINUNICODE: a 4-byte little-endian length, then UTF-8.
  mutating func string(_ text: String) {
    let utf8 = Array(text.utf8)
    bytes.append(0x58)
    append(littleEndian: UInt32(utf8.count), byteCount: 4)
    bytes += utf8
  }

  /// BININT1, BININT (signed 32-bit) or LONG1 (8-byte two's complement), whichever fits.
  mutating func int(_ value: Int) {
    if (0...0xff).contains(value) {
      bytes += [0x4b, UInt8(value)]
    } else if let small = Int32(exactly: value) {
      bytes.append(0x4a)
      append(littleEndian: UInt32(bitPattern: small), byteCount: 4)
    } else {
      bytes += [0x8a, 8]
      append(littleEndian: UInt64(bitPattern: Int64(value)), byteCount: 8)
    }
  }

  /// A tuple of integers (sizes, strides).
  mutating func intTuple(_ values: [Int]) {
    if values.isEmpty { return emptyTuple() }
    mark()
    for value in values { int(value) }
    tupleFromMark()
  }

  private mutating func append<T: FixedWidthInteger>(littleEndian value: T, byteCount: Int) {
    for i in 0..<byteCount { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
  }
}
