// Class lists of the segmentation datasets, and Cityscapes' label-id → train-id table.

public enum SegmentationClasses {
  /// mmseg `PascalVOCDataset.CLASSES`: background + the 20 VOC classes (mask index = position).
  public static let voc = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
                           "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
                           "sheep", "sofa", "train", "tvmonitor"]

  /// mmseg `CityscapesDataset.CLASSES`: the 19 train ids in order.
  public static let cityscapes = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                                  "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
                                  "bus", "train", "motorcycle", "bicycle"]

  /// cityscapesscripts `helpers/labels.py`: `trainId` of every label id 0…255 (255 where the label is not
  /// evaluated: unlabeled, ego vehicle, rectification border, out of roi, static, dynamic, ground, parking, rail
  /// track, guard rail, bridge, tunnel, polegroup, caravan, trailer, and every id past 33).
  public static let cityscapesTrainIDs: [UInt8] = {
    var table = [UInt8](repeating: 255, count: 256)
    let evaluated: [(labelID: Int, trainID: UInt8)] = [
      (7, 0), (8, 1), (11, 2), (12, 3), (13, 4), (17, 5), (19, 6), (20, 7), (21, 8), (22, 9), (23, 10), (24, 11),
      (25, 12), (26, 13), (27, 14), (28, 15), (31, 16), (32, 17), (33, 18),
    ]
    for (labelID, trainID) in evaluated { table[labelID] = trainID }
    return table
  }()
}
