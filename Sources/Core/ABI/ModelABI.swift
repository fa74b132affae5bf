import CSwiftRCNN
import SwiftRCNNOps

// C ABI of the detection models (swiftrcnn.h, "Detection models"): `srcnn_model` is a retained `DetectionModel`,
// `srcnn_arrays` a retained `NamedArrays`; both cross the boundary as opaque pointers.

/// Most state-dict entries one model accepts (a Mask R-CNN has about 350).
let maxWeightEntries = 1 << 20
/// Most images one call accepts; the padded batch's pixel bound usually binds first.
let maxImagesPerCall = 1 << 16

/// The named arrays behind `srcnn_arrays`: each a float32 or int64 array with its shape and a C string name.
final class NamedArrays {
    enum Values {
        case float32([Float])
        case int64([Int64])
    }

    struct Item {
        let name: UnsafeMutablePointer<CChar>
        let shape: [Int]
        var values: Values
        /// Moved out by `srcnn_arrays_take`: `values` is then empty.
        var taken = false
    }

    private(set) var items = [Item]()

    /// Moves item `index`'s values out (the item keeps its name and shape and is marked taken).
    func take(_ index: Int) -> Values {
        var values: Values
        switch items[index].values {
        case .float32: values = .float32([])
        case .int64: values = .int64([])
        }
        swap(&values, &items[index].values)
        items[index].taken = true
        return values
    }

    func append(_ name: String, shape: [Int], _ values: Values) {
        let bytes = Array(name.utf8CString)
        let cName = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        cName.initialize(from: bytes, count: bytes.count)
        items.append(Item(name: cName, shape: shape, values: values))
    }

    func append(_ name: String, _ map: FeatureMap) {
        append(name, shape: map.shape, .float32(Array(map.data)))
    }

    /// "image_sizes": (N, 2) int64 rows (height, width).
    func appendImageSizes(_ sizes: [(Int, Int)]) {
        append("image_sizes", shape: [sizes.count, 2], .int64(sizes.flatMap { [Int64($0.0), Int64($0.1)] }))
    }

    deinit {
        for item in items { item.name.deallocate() }
    }
}

/// The config as the Swift model takes it (range checks happen in `DetectionModel.Config.validate`).
func modelConfig(_ c: srcnn_model_config) throws -> DetectionModel.Config {
    guard let kind = DetectionModel.Kind(rawValue: c.kind) else {
        throw SwiftRCNNError.invalidValue("kind: expected an srcnn_model_kind (0, 1 or 2), got \(c.kind)")
    }
    // Clamping keeps absurd 64-bit values out of Int arithmetic; validate() then rejects them by range.
    func int(_ v: Int64) -> Int { Int(max(min(v, Int64(Int32.max)), Int64(Int32.min))) }
    var config = DetectionModel.Config()
    config.kind = kind
    config.numClasses = int(c.num_classes)
    config.minSize = c.min_size
    config.maxSize = c.max_size
    config.imageMean = withUnsafeBytes(of: c.image_mean) { Array($0.bindMemory(to: Double.self)).map(Float.init) }
    config.imageStd = withUnsafeBytes(of: c.image_std) { Array($0.bindMemory(to: Double.self)).map(Float.init) }
    config.rpnPreNMSTopN = int(c.rpn_pre_nms_top_n_test)
    config.rpnPostNMSTopN = int(c.rpn_post_nms_top_n_test)
    config.rpnNMSThresh = c.rpn_nms_thresh
    config.rpnScoreThresh = c.rpn_score_thresh
    config.boxScoreThresh = c.box_score_thresh
    config.boxNMSThresh = c.box_nms_thresh
    config.boxDetectionsPerImage = int(c.box_detections_per_img)
    if let text = c.architecture { config.architecture = try Architecture(json: String(cString: text)) }
    return config
}

/// The state dict as a `WeightStore`: names must be distinct, arrays float32.
func weightStore(
    _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ arrays: UnsafePointer<srcnn_array>?,
    count: Int64
) throws -> WeightStore {
    try require(
        count >= 0 && count <= maxWeightEntries,
        "weights: expected 0...\(maxWeightEntries) entries, got \(count)")
    guard count == 0 || (names != nil && arrays != nil) else {
        throw SwiftRCNNError.invalidValue("weights: names or arrays is NULL")
    }
    var entries = [String: WeightStore.Entry]()
    for i in 0..<Int(count) {
        guard let cName = names![i] else { throw SwiftRCNNError.invalidValue("weights: name \(i) is NULL") }
        let name = String(cString: cName)
        let a = try ArrayArgument(arrays![i], "weights['\(name)']")
        try a.expect(dtype: .float32)
        try require(entries[name] == nil, "weights: key '\(name)' appears twice")
        entries[name] = WeightStore.Entry(
            shape: a.shape, values: Array(UnsafeBufferPointer(start: a.pointer(Float.self), count: a.count)))
    }
    return WeightStore(entries)
}

/// images[count] as (1, 3, H, W) maps: float32, 3 channels, H, W >= 1, finite (checked on the copies returned).
func modelImages(_ images: UnsafePointer<srcnn_array>?, count: Int64) throws -> [FeatureMap] {
    try require(
        count >= 1 && count <= maxImagesPerCall,
        "images: expected 1...\(maxImagesPerCall) images, got \(count)")
    guard let images else { throw SwiftRCNNError.invalidValue("images: missing array list (NULL)") }
    return try (0..<Int(count)).map { i in
        let a = try ArrayArgument(images[i], "images[\(i)]")
        try a.expect(dtype: .float32)
        try a.expect(shape: [3, nil, nil], "(3, H, W)")
        try require(
            a[1] >= 1 && a[2] >= 1,
            "images[\(i)]: expected H, W >= 1, got shape "
                + ArrayArgument.describe(a.shape))
        let image = FeatureMap(
            batch: 1, channels: 3, height: a[1], width: a[2],
            data: Array(UnsafeBufferPointer(start: a.pointer(Float.self), count: a.count)))
        if let j = image.data.withUnsafeBufferPointer({ $0.firstIndex(where: { !$0.isFinite }) }) {
            throw SwiftRCNNError.invalidValue(
                "images[\(i)]: contains \(image.data[j].isNaN ? "NaN" : "an infinite value") at flat index \(j)")
        }
        return image
    }
}

func model(_ p: OpaquePointer?) throws -> DetectionModel {
    guard let p else { throw SwiftRCNNError.invalidValue("model: NULL") }
    return Unmanaged<DetectionModel>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

func namedArrays(_ p: OpaquePointer?) throws -> NamedArrays {
    guard let p else { throw SwiftRCNNError.invalidValue("arrays: NULL") }
    return Unmanaged<NamedArrays>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

/// Hands `result` to the caller through `out`.
func publish(_ result: NamedArrays, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = OpaquePointer(Unmanaged.passRetained(result).toOpaque())
}

@_cdecl("srcnn_model_create")
public func srcnn_model_create(
    _ config: UnsafePointer<srcnn_model_config>?, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
    _ arrays: UnsafePointer<srcnn_array>?, _ count: Int64, _ model: UnsafeMutablePointer<OpaquePointer?>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        guard let config else { throw SwiftRCNNError.invalidValue("config: NULL") }
        guard let model else { throw SwiftRCNNError.invalidValue("model: missing output pointer (NULL)") }
        let c = try modelConfig(config.pointee)
        try c.validate()
        var weights = try weightStore(names, arrays, count: count)
        let built = try DetectionModel(config: c, weights: &weights)
        model.pointee = OpaquePointer(Unmanaged.passRetained(built).toOpaque())
    }
}

@_cdecl("srcnn_model_free")
public func srcnn_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<DetectionModel>.fromOpaque(UnsafeRawPointer(model)).release()
}

/// The body shared by the model exports: checks the model and `out`, converts the images, and publishes the
/// named arrays `body` derives from the model's result on them.
func modelCall(
    _ modelPointer: OpaquePointer?, _ images: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?,
    _ body: (DetectionModel, [FeatureMap], NamedArrays) throws -> Void
) -> Int32 {
    abiCall(err) {
        let m = try model(modelPointer)
        let out = try outPointer(out)
        let inputs = try modelImages(images, count: numImages)
        let result = NamedArrays()
        try body(m, inputs, result)
        publish(result, out)
    }
}

@_cdecl("srcnn_model_transform")
public func srcnn_model_transform(
    _ modelPointer: OpaquePointer?, _ images: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    modelCall(modelPointer, images, numImages, out, err) { m, inputs, result in
        let (batch, sizes) = try m.transformed(inputs)
        result.append("images", batch)
        result.appendImageSizes(sizes)
    }
}

@_cdecl("srcnn_model_features")
public func srcnn_model_features(
    _ modelPointer: OpaquePointer?, _ images: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    modelCall(modelPointer, images, numImages, out, err) { m, inputs, result in
        let (levels, sizes) = try m.features(inputs)
        for (name, level) in zip(m.config.architecture.levelNames, levels) { result.append(name, level) }
        result.appendImageSizes(sizes)
    }
}

@_cdecl("srcnn_model_detect")
public func srcnn_model_detect(
    _ modelPointer: OpaquePointer?, _ images: UnsafePointer<srcnn_array>?, _ numImages: Int64,
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    modelCall(modelPointer, images, numImages, out, err) { m, inputs, result in
        appendDetections(try m.detect(inputs), images: inputs, to: result)
    }
}

/// "boxes.i", "labels.i", "scores.i" (and "masks.i") of each image's detections.
func appendDetections(_ detections: [Detections], images: [FeatureMap], to result: NamedArrays) {
    for (i, d) in detections.enumerated() {
        let n = d.labels.count
        result.append("boxes.\(i)", shape: [n, 4], .float32(d.boxes))
        result.append("labels.\(i)", shape: [n], .int64(d.labels))
        result.append("scores.\(i)", shape: [n], .float32(d.scores))
        if let keypoints = d.keypoints, let scores = d.keypointScores {
            let k = n == 0 ? 0 : scores.count / n
            result.append("keypoints.\(i)", shape: [n, k, 3], .float32(keypoints))
            result.append("keypoints_scores.\(i)", shape: [n, k], .float32(scores))
        }
        if let masks = d.masks {
            result.append("masks.\(i)", shape: [n, 1, images[i].height, images[i].width], .float32(masks))
        }
    }
}

func outPointer(_ p: UnsafeMutablePointer<OpaquePointer?>?) throws -> UnsafeMutablePointer<OpaquePointer?> {
    guard let p else { throw SwiftRCNNError.invalidValue("out: missing output pointer (NULL)") }
    return p
}

@_cdecl("srcnn_arrays_count")
public func srcnn_arrays_count(_ arrays: OpaquePointer?) -> Int64 {
    guard let a = try? namedArrays(arrays) else { return 0 }
    return Int64(a.items.count)
}

/// The result and `index` as an item position, or an error naming the valid range.
func namedIndex(_ arrays: OpaquePointer?, _ index: Int64) throws -> (NamedArrays, Int) {
    let a = try namedArrays(arrays)
    try require(
        index >= 0 && index < a.items.count,
        "index: expected 0...\(a.items.count - 1), got \(index)")
    return (a, Int(index))
}

/// The item at `index`, or an error naming the valid range.
func namedItem(_ arrays: OpaquePointer?, _ index: Int64) throws -> NamedArrays.Item {
    let (a, i) = try namedIndex(arrays, index)
    return a.items[i]
}

extension NamedArrays.Item {
    var dtype: DType {
        switch values {
        case .float32: return .float32
        case .int64: return .int64
        }
    }
}

@_cdecl("srcnn_arrays_info")
public func srcnn_arrays_info(
    _ arrays: OpaquePointer?, _ index: Int64, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ info: UnsafeMutablePointer<srcnn_array>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let item = try namedItem(arrays, index)
        guard let name, let info else { throw SwiftRCNNError.invalidValue("name, info: missing output (NULL)") }
        name.pointee = UnsafePointer(item.name)
        info.pointee = arrayDescription(data: nil, shape: item.shape, dtype: item.dtype.rawValue)
    }
}

@_cdecl("srcnn_arrays_read")
public func srcnn_arrays_read(
    _ arrays: OpaquePointer?, _ index: Int64, _ out: UnsafeMutablePointer<srcnn_array>?,
    _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        let item = try namedItem(arrays, index)
        try require(!item.taken, "index: array \(index) was taken out of this result (srcnn_arrays_take)")
        let o = try ArrayArgument(out, "out")
        try requireOutput(o, dtype: item.dtype, shape: item.shape)
        func copy<T>(_ values: [T]) {
            values.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { o.pointer(T.self).update(from: base, count: src.count) }
            }
        }
        switch item.values {
        case .float32(let v): copy(v)
        case .int64(let v): copy(v)
        }
    }
}

/// One array moved out of a result by `srcnn_arrays_take` (`srcnn_buffer`): it holds the only reference to the
/// array's storage, so the elements stay where `data` points, writable, until the owner is released.
final class TakenArray {
    private let values: NamedArrays.Values
    let data: UnsafeMutableRawPointer?

    init(_ values: consuming NamedArrays.Values) {
        // Moved out of the result and consumed here, the storage is uniquely referenced: the mutable access does
        // not copy, and nothing touches `values` again until deinit, so the elements stay at `data`.
        switch consume values {
        case .float32(var v):
            data = v.withUnsafeMutableBytes { $0.baseAddress }
            self.values = .float32(v)
        case .int64(var v):
            data = v.withUnsafeMutableBytes { $0.baseAddress }
            self.values = .int64(v)
        }
    }
}

@_cdecl("srcnn_arrays_take")
public func srcnn_arrays_take(
    _ arrays: OpaquePointer?, _ index: Int64, _ info: UnsafeMutablePointer<srcnn_array>?,
    _ owner: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<CChar>?
) -> Int32 {
    abiCall(err) {
        // Only the shape and dtype are read here: a copy of the item would share the storage and make it copied.
        let (result, i) = try namedIndex(arrays, index)
        try require(!result.items[i].taken, "index: array \(index) was already taken out of this result")
        guard let info, let owner else { throw SwiftRCNNError.invalidValue("info, owner: missing output (NULL)") }
        let shape = result.items[i].shape, dtype = result.items[i].dtype
        let taken = TakenArray(result.take(i))
        info.pointee = arrayDescription(data: taken.data, shape: shape, dtype: dtype.rawValue)
        owner.pointee = OpaquePointer(Unmanaged.passRetained(taken).toOpaque())
    }
}

@_cdecl("srcnn_buffer_free")
public func srcnn_buffer_free(_ buffer: OpaquePointer?) {
    guard let buffer else { return }
    Unmanaged<TakenArray>.fromOpaque(UnsafeRawPointer(buffer)).release()
}

@_cdecl("srcnn_arrays_free")
public func srcnn_arrays_free(_ arrays: OpaquePointer?) {
    guard let arrays else { return }
    Unmanaged<NamedArrays>.fromOpaque(UnsafeRawPointer(arrays)).release()
}
