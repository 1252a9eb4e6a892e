// .npy reading and writing against files NumPy wrote (scripts/reference/make_svm_fixtures.py).
import Foundation
import Testing
import Tensors
@testable import Evaluation

@Suite struct NPYTests {
  static let folder: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/svm")

  @Test func readsNumPyFiles() throws {
    let f4 = try NPY.read(Self.folder.appendingPathComponent("f4_2x3.npy"))
    #expect(f4 == NPYArray(shape: [2, 3], data: .float32([-0.5, -0.25, 0, 0.25, 0.5, 0.75])))
    let f8 = try NPY.read(Self.folder.appendingPathComponent("f8_3.npy"))
    #expect(f8 == NPYArray(shape: [3], data: .float64([1.5, -2.25, 1e-300])))
    let i4 = try NPY.read(Self.folder.appendingPathComponent("i4_2x2.npy"))
    #expect(i4 == NPYArray(shape: [2, 2], data: .int32([1, -1, 0, 2_147_483_647])))
    let i8 = try NPY.read(Self.folder.appendingPathComponent("i8_scalar.npy"))
    #expect(i8 == NPYArray(shape: [], data: .int64([-7])))
    let v2 = try NPY.read(Self.folder.appendingPathComponent("f4_v2_2x2.npy"))
    #expect(v2 == NPYArray(shape: [2, 2], data: .float32([1, 2, 3, 4])))
  }

  @Test func rejectsWhatItCannotRead() throws {
    let fortran = Self.folder.appendingPathComponent("fortran_2x3.npy")
    #expect(throws: NPYError.fortranOrder(path: fortran.path)) { try NPY.read(fortran) }
    let uint8 = Self.folder.appendingPathComponent("u1_2.npy")
    #expect(throws: NPYError.unsupportedDType(path: uint8.path, descr: "|u1")) { try NPY.read(uint8) }
    #expect(throws: NPYError.notNPY(path: "x")) { try NPY.decode(Data("hello world".utf8), path: "x") }
    var truncated = try Data(contentsOf: Self.folder.appendingPathComponent("f4_2x3.npy"))
    truncated.removeLast(4)
    #expect(throws: NPYError.truncated(path: "t", expectedBytes: 24, actualBytes: 20)) {
      try NPY.decode(truncated, path: "t")
    }
  }

  @Test func writesWhatNumPyWrites() throws {
    // Our header for float32 [2, 3] is byte-identical to numpy.save's (format 1.0, 128 bytes).
    let numpy = try Data(contentsOf: Self.folder.appendingPathComponent("f4_2x3.npy"))
    #expect(NPY.header(dtype: .float32, shape: [2, 3]) == Array(numpy.prefix(128)))
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("npy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    for array in [NPYArray(shape: [3], data: .int32([1, 0, -1])), NPYArray(shape: [1, 2], data: .int64([5, -5])),
                  NPYArray(shape: [2, 1], data: .float64([0.1, .infinity]))] {
      let url = directory.appendingPathComponent("a.npy")
      try NPY.write(array, to: url)
      #expect(try NPY.read(url) == array)
    }
    let matrix = FeatureMatrix(rows: 2, columns: 3, scalars: [-0.5, -0.25, 0, 0.25, 0.5, 0.75])
    let url = directory.appendingPathComponent("m.npy")
    try NPY.write(matrix, to: url)
    #expect(try Data(contentsOf: url) == numpy)
  }

  @Test func versionTwoHeaderForHugeDicts() {
    let header = NPY.header(dtype: .int32, shape: Array(repeating: 1, count: 30_000))
    #expect(header[6] == 2 && header.count % 64 == 0)
  }
}
