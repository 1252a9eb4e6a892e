// The detection part of `data check` on a VOC devkit: what `run faster-rcnn` will skip, keep or refuse
// (see DetectionDataset.swift's table), counted per annotation in mmdet 2.x's box convention.

/// Counts of the annotations a detection run treats specially.
struct DetectionLayoutCounts {
  var imagesWithoutObjects = 0
  var zeroAreaBoxes = 0
  var boxesCrossingBorder = 0

  /// Counts `annotation`; returns why a detection run would refuse it (a box with xmax < xmin or ymax < ymin).
  mutating func add(_ annotation: VOCAnnotation) -> String? {
    if annotation.objects.isEmpty { imagesWithoutObjects += 1 }
    for (index, object) in annotation.objects.enumerated() {
      let box = object.box
      guard box.xmax >= box.xmin && box.ymax >= box.ymin else {
        return "object \(index + 1) (\(object.name)) has xmax < xmin or ymax < ymin; a detection run refuses it"
      }
      let (x1, y1, x2, y2) = VOCBoxConvention.mmdet.box(box)
      let converted = DetectionObject(x1: x1, y1: y1, x2: x2, y2: y2, classIndex: 0, isDifficult: false)
      if converted.hasZeroArea { zeroAreaBoxes += 1 }
      if converted.crossesBorder(width: annotation.width, height: annotation.height) { boxesCrossingBorder += 1 }
    }
    return nil
  }

  /// The counts worth printing (the non-zero ones), named for `data check`'s table.
  var nonZeroCounts: [DatasetCheck.Count] {
    [DatasetCheck.Count(name: "images without objects (dropped from detection training)", value: imagesWithoutObjects),
     DatasetCheck.Count(name: "zero-area boxes (mmdet convention; kept)", value: zeroAreaBoxes),
     DatasetCheck.Count(name: "boxes crossing the image border (clipped in training)", value: boxesCrossingBorder)]
      .filter { $0.value > 0 }
  }
}
