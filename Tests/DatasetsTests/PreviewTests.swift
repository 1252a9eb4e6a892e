// `data preview`: grid geometry, the PNG round trip, views that differ from their source, and the three source
// layouts (image folder, VOC year, IDX).
import Foundation
import Testing
import Tensors
@testable import Datasets

@Suite("Preview grid")
struct PreviewTests {
  /// A smooth RGB test image whose pixels all differ from a constant.
  static func pattern(width: Int, height: Int, offset: Int = 0) -> Image {
    var pixels: [UInt8] = []
    for y in 0..<height {
      for x in 0..<width {
        pixels += [UInt8((x * 255) / max(1, width - 1)), UInt8((y * 255) / max(1, height - 1)),
                   UInt8((x * y + offset * 37) % 256)]
      }
    }
    return Image(width: width, height: height, channels: 3, pixels: pixels)
  }

  /// The `size × size` cell at (column, row) of a grid.
  static func cell(_ grid: Image, column: Int, row: Int, size: Int, padding: Int) -> Image {
    grid.cropped(x: padding + column * (size + padding), y: padding + row * (size + padding), width: size, height: size)
  }

  @Test(arguments: PreviewTransform.allCases)
  func gridHasTheExpectedSizeAndDecodes(transform: PreviewTransform) throws {
    let sources = [Self.pattern(width: 40, height: 30), Self.pattern(width: 24, height: 48, offset: 1).convertedToRGB(),
                   Image(width: 28, height: 28, channels: 1, pixels: (0..<784).map { UInt8($0 % 251) })]
    let preview = PreviewGrid(transform: transform, size: 32, padding: 4, seed: 3)
    let grid = preview.render(sources)
    // 3 columns × 32 + 4 gaps × 4 = 112 wide; 3 rows × 32 + 4 × 4 = 112 high.
    #expect(grid.width == 112 && grid.height == 112 && grid.channels == 3)
    #expect(preview.gridSize(rows: 3) == (112, 112))
    let decoded = try Image(decoding: try encodePNG(grid))
    #expect(decoded == grid)
    // The gaps keep the gap level: the first row and column of pixels.
    #expect(grid.cropped(x: 0, y: 0, width: 112, height: 4).pixels.allSatisfy { $0 == PreviewGrid.gapLevel })
    #expect(grid.cropped(x: 0, y: 0, width: 4, height: 112).pixels.allSatisfy { $0 == PreviewGrid.gapLevel })
    // Same seed, same grid.
    #expect(preview.render(sources) == grid)
  }

  @Test func viewsDifferFromTheSourceAndFromEachOther() {
    let source = Self.pattern(width: 48, height: 48)
    let preview = PreviewGrid(transform: .simsiam, size: 48, padding: 2, seed: 11)
    let grid = preview.render([source, source])
    // A square source of the cell size is pasted unchanged.
    #expect(Self.cell(grid, column: 0, row: 0, size: 48, padding: 2) == source)
    for row in 0..<2 {
      let first = Self.cell(grid, column: 1, row: row, size: 48, padding: 2)
      let second = Self.cell(grid, column: 2, row: row, size: 48, padding: 2)
      #expect(first != source && second != source && first != second)
      #expect(preview.views(of: source, row: row) == [first, second])
    }
    // Rows draw from different streams.
    #expect(preview.views(of: source, row: 0) != preview.views(of: source, row: 1))
  }

  @Test func evalViewsAreTheEvaluationTransforms() {
    let source = Self.pattern(width: 60, height: 40)
    let views = PreviewGrid(transform: .eval, size: 224).views(of: source, row: 0)
    #expect(views == [EvaluationTransform.centerCrop.image(source), EvaluationTransform.svm.image(source)])
  }

  @Test func fittedSourceKeepsItsAspect() {
    let preview = PreviewGrid(transform: .eval, size: 32)
    let fitted = preview.fitted(Self.pattern(width: 64, height: 16))
    #expect(fitted.width == 32 && fitted.height == 8)
  }

  // MARK: - Sources

  @Test func loadsImageFolders() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-preview-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    for (index, name) in ["a/1.png", "a/2.jpg", "b/3.png", "b/notes.txt"].enumerated() {
      let url = folder.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      if url.pathExtension == "txt" {
        try Data("not an image".utf8).write(to: url)
      } else {
        try Self.pattern(width: 20 + index, height: 10, offset: index).write(to: url)
      }
    }
    let sources = try PreviewGrid.loadSources(data: folder, count: 8, seed: 0)
    #expect(sources.map(\.width).sorted() == [20, 21, 22])
    #expect(sources.allSatisfy { $0.channels == 3 })
    #expect(try PreviewGrid.loadSources(data: folder, count: 2, seed: 5).count == 2)
  }

  @Test func loadsIDXFilesAsGray() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-preview-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    // 3 images of 4×5 (rows × cols), pixel values 0…59 in file order (image i starts with 20 i); labels 0, 1, 2.
    let header: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]
    let images: [UInt8] = header + (0..<60).map { (value: Int) -> UInt8 in UInt8(value) }
    try Data(images).write(to: folder.appendingPathComponent("train-images-idx3-ubyte"))
    try Data([0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2]).write(to: folder.appendingPathComponent("train-labels-idx1-ubyte"))
    let sources = try PreviewGrid.loadSources(data: folder, count: 3, seed: 2)
    #expect(sources.count == 3)
    #expect(sources.allSatisfy { $0.width == 5 && $0.height == 4 && $0.channels == 1 })
    #expect(Set(sources.map { $0.pixels[0] }) == [0, 20, 40])
    let grid = PreviewGrid(transform: .simsiam, size: 16, padding: 1).render(sources)
    #expect(grid.width == 3 * 16 + 4 && grid.height == 3 * 16 + 4)
  }

  @Test func loadsVOCScenes() throws {
    let fixture = try SceneFixture.shared.get()
    let sources = try PreviewGrid.loadSources(data: fixture.vocRoot, count: 4, seed: 9)
    #expect(sources.count == 4)
    #expect(sources.allSatisfy { (96...256).contains($0.width) && $0.channels == 3 })
  }

  @Test func refusesOtherLayouts() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-preview-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let list = folder.appendingPathComponent("list.txt")
    try Data("a.jpg 0\n".utf8).write(to: list)
    #expect(throws: DatasetError.self) { try PreviewGrid.loadSources(data: list, count: 1, seed: 0) }
  }
}
