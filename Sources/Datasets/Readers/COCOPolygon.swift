// Polygon → RLE rasterisation exactly as pycocotools' `frPoly` / `rleFrPoly` (common/maskApi.c): the outline is
// upsampled ×5 onto an integer grid, walked edge by edge, and every crossing of a pixel-column centre line gives
// the first foreground row of that column's run; sorting those positions gives the runs. A pixel is foreground
// when its centre lies inside the polygon (up to the ×5 rounding), which is why masks differ from a plain
// scan-line fill by a pixel here and there — and why we follow the C code step by step.

extension COCORLE {
  /// The ×5 upsampling of `rleFrPoly`.
  private static let polygonScale = 5.0

  /// Rasterises one polygon [x1, y1, x2, y2, …] (pixels, continuous coordinates) into a height × width mask, as
  /// `rleFrPoly(R, xy, k = count / 2, h, w)`. An odd trailing coordinate is ignored (k rounds down); an empty
  /// polygon gives an empty mask. Coordinates must be finite and within ±10⁸ (the C code converts ×5 to `int`).
  public init(polygon xy: [Double], height: Int, width: Int) {
    precondition(height > 0 && width > 0, "COCORLE(polygon:): the mask is \(height)×\(width)")
    precondition(xy.allSatisfy { $0.isFinite && abs($0) <= 1e8 },
                 "COCORLE(polygon:): coordinates must be finite and within ±1e8")
    let vertexCount = xy.count / 2
    guard vertexCount > 0 else {
      self.init(height: height, width: width, counts: [UInt32(height * width)])
      return
    }
    // 1. Vertices on the ×5 grid (C's (int)(5x + .5): truncation toward zero), closed.
    var gridX = (0..<vertexCount).map { Int(Self.polygonScale * xy[2 * $0] + 0.5) }
    var gridY = (0..<vertexCount).map { Int(Self.polygonScale * xy[2 * $0 + 1] + 0.5) }
    gridX.append(gridX[0])
    gridY.append(gridY[0])
    // 2. Every grid point along each edge, stepping along its longer axis (Bresenham-like, rounded with +.5),
    //    walked from the lower end so the rounding does not depend on the edge's direction.
    var boundaryX: [Int] = [], boundaryY: [Int] = []
    var pointCount = 0
    for j in 0..<vertexCount {
      let dx: Int = abs(gridX[j] - gridX[j + 1]), dy: Int = abs(gridY[j] - gridY[j + 1])
      pointCount += max(dx, dy) + 1
    }
    boundaryX.reserveCapacity(pointCount)
    boundaryY.reserveCapacity(pointCount)
    for j in 0..<vertexCount {
      var (xs, xe, ys, ye) = (gridX[j], gridX[j + 1], gridY[j], gridY[j + 1])
      let dx = abs(xe - xs), dy = abs(ys - ye)
      let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye)
      if flip { swap(&xs, &xe); swap(&ys, &ye) }
      if dx == 0 && dy == 0 {
        // A repeated vertex: C computes 0/0 here; the point's y is never read (its x equals both neighbours').
        boundaryX.append(xs)
        boundaryY.append(ys)
        continue
      }
      if dx >= dy {
        let slope = Double(ye - ys) / Double(dx)
        for d in 0...dx {
          let t = flip ? dx - d : d
          boundaryX.append(t + xs)
          boundaryY.append(Int(Double(ys) + slope * Double(t) + 0.5))
        }
      } else {
        let slope = Double(xe - xs) / Double(dy)
        for d in 0...dy {
          let t = flip ? dy - d : d
          boundaryY.append(t + ys)
          boundaryX.append(Int(Double(xs) + slope * Double(t) + 0.5))
        }
      }
    }
    // 3. Where the walk crosses a pixel-column centre (x·5 + 2 on the grid, i.e. an integer after scaling back),
    //    the first row whose centre is below the outline: ceil of the crossing's y, clamped to [0, h].
    var positions: [UInt32] = []  // column-major index x · h + y of each crossing
    positions.reserveCapacity(boundaryX.count + 1)
    for j in 1..<max(boundaryX.count, 1) where boundaryX[j] != boundaryX[j - 1] {
      var column = Double(boundaryX[j] < boundaryX[j - 1] ? boundaryX[j] : boundaryX[j] - 1)
      column = (column + 0.5) / Self.polygonScale - 0.5
      if column.rounded(.down) != column || column < 0 || column > Double(width - 1) { continue }
      var row = Double(boundaryY[j] < boundaryY[j - 1] ? boundaryY[j] : boundaryY[j - 1])
      row = (row + 0.5) / Self.polygonScale - 0.5
      if row < 0 { row = 0 } else if row > Double(height) { row = Double(height) }
      row.round(.up)
      positions.append(UInt32(truncatingIfNeeded: Int(column) * height + Int(row)))
    }
    // 4. Sorted crossings (plus the end of the image) as differences are the runs; a zero difference (two
    //    crossings at one pixel) cancels: the run after it is added to the run before.
    positions.append(UInt32(truncatingIfNeeded: height * width))
    positions.sort()
    var previous: UInt32 = 0
    for j in positions.indices {
      let position = positions[j]
      positions[j] = position &- previous
      previous = position
    }
    var counts: [UInt32] = [positions[0]]
    var j = 1
    while j < positions.count {
      if positions[j] > 0 {
        counts.append(positions[j])
        j += 1
      } else {
        j += 1
        if j < positions.count {
          counts[counts.count - 1] &+= positions[j]
          j += 1
        }
      }
    }
    self.init(height: height, width: width, counts: counts)
  }

  /// An object's polygons rasterised and merged into one mask, as pycocotools' `annToRLE` does for a polygon
  /// segmentation (`merge(frPyObjects(polygons, h, w))`). pycocotools reads the list as boxes when its first
  /// polygon has 4 values and fails below that, so the first polygon must have at least 6 values (3 points);
  /// throws `DatasetError.invalidField` otherwise (`field` names the annotation, for the message).
  public init(polygons: [[Double]], height: Int, width: Int, field: String = "segmentation") throws {
    guard let first = polygons.first, first.count > 4 else {
      throw DatasetError.invalidField(
        path: "", field: field, value: polygons.first.map { "a polygon of \($0.count) values" } ?? "[]",
        expected: "polygons [[x1, y1, x2, y2, x3, y3, …], …] whose first has at least 3 points")
    }
    for (index, polygon) in polygons.enumerated() where !polygon.allSatisfy({ $0.isFinite && abs($0) <= 1e8 }) {
      throw DatasetError.invalidField(path: "", field: "\(field)[\(index)]", value: "\(polygon.prefix(8))",
                                      expected: "finite coordinates within ±1e8")
    }
    self = COCORLE.merge(polygons.map { COCORLE(polygon: $0, height: height, width: width) })
  }
}
