/*
 * swiftrcnn.h — the C ABI of libswiftrcnn_capi.so. This header is the contract: Sources/Core implements it with
 * @_cdecl functions, the CPython extension in Sources/CPython/extension calls it, and Tests/CoreTests calls every
 * function through it so the two cannot drift apart.
 *
 * Conventions
 * - Every array crosses the boundary as an `srcnn_array`: a pointer to C-contiguous (row-major) data, its dtype and
 *   its full shape. The library checks each array's dtype, rank and shape against the others before touching data,
 *   so a caller cannot make it read or write out of bounds by passing inconsistent sizes.
 * - Float ops take SRCNN_FLOAT32 or SRCNN_FLOAT64 inputs; all float arrays of one call share that dtype. Index
 *   outputs are SRCNN_INT64; masks are SRCNN_UINT8 (0 or 1).
 * - Outputs are allocated by the caller with the documented shape. Where the length of a result is data dependent
 *   (nms, remove_small_boxes, ...), the output has room for the worst case and `*count` receives the used length.
 * - Every function returns an `srcnn_status`. On failure it writes a NUL-terminated message naming the offending
 *   argument into `err` (capacity SRCNN_ERR_CAPACITY bytes; `err` may be NULL) and leaves outputs unspecified.
 *   No input makes a function abort the process.
 * - Functions are thread-safe and release no locks of the caller's; work is spread over srcnn_num_threads() threads.
 * - Boxes are (x1, y1, x2, y2) in pixels unless a function says otherwise. RoIs are rows [batch_index, x1, y1, x2, y2].
 * - This header is also the binding's declaration: scripts/gen_bindings.py makes every status function here
 *   (`err` last) a function of the Python module swiftrcnn._C, and every constant a constant of it. Two
 *   annotations, which expand to nothing, tell it what C cannot: SRCNN_OPTIONAL marks a pointer that may be NULL,
 *   SRCNN_LIST(n) a pointer to `n` elements whose count is the parameter `n`.
 */
#ifndef SWIFTRCNN_H
#define SWIFTRCNN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library version. */
#define SRCNN_VERSION "0.1.0"
#define SRCNN_MAX_DIMS 6
#define SRCNN_ERR_CAPACITY 512
/* Most elements of any array an op accepts or returns (a memory error beyond). */
#define SRCNN_MAX_ELEMENTS (1LL << 40)

#define SRCNN_OPTIONAL
#define SRCNN_LIST(count)

typedef enum srcnn_status {
    SRCNN_OK = 0,
    SRCNN_VALUE_ERROR = 1,  /* a value, shape or size is invalid (Python: ValueError)   */
    SRCNN_TYPE_ERROR = 2,   /* an array has the wrong dtype (Python: TypeError)          */
    SRCNN_MEMORY_ERROR = 3, /* the result would need an absurd allocation (MemoryError) */
    SRCNN_INTERNAL_ERROR = 4
} srcnn_status;

typedef enum srcnn_dtype { SRCNN_FLOAT32 = 1, SRCNN_FLOAT64 = 2, SRCNN_INT64 = 3, SRCNN_UINT8 = 4 } srcnn_dtype;

/* A C-contiguous array. `data` may be NULL only when the array has no elements. */
typedef struct srcnn_array {
    void *data;
    int64_t shape[SRCNN_MAX_DIMS];
    int32_t ndim;
    int32_t dtype; /* an srcnn_dtype */
} srcnn_array;

/* ---- Runtime ---------------------------------------------------------------------------------------------------- */

/* The library version, SRCNN_VERSION of the header it was built from. Static storage. */
const char *srcnn_version(void);
/* Threads used by every op: SWIFTRCNN_NUM_THREADS when set, else the number of cores. */
int32_t srcnn_num_threads(void);
/* Sets the thread count (1 ... 1024). */
int32_t srcnn_set_num_threads(int32_t num_threads, char *err);

/* Bytes of freed large buffers the library keeps for reuse (its buffer cache: feature maps and scratch of 1 MiB and
 * more; in use and kept together within twice the most in use at once, and kept at most SWIFTRCNN_BUFFER_CACHE_MB
 * mebibytes when set; 0 turns it off). */
int64_t srcnn_kept_memory(void);
/* Frees every buffer the cache keeps; returns how many bytes that was. Buffers in use are not affected. */
int64_t srcnn_release_memory(void);

/* The instruction-set path the GEMM, Winograd and im2col kernels run: "generic", "avx2" or "avx512". Chosen at
 * start-up as the best the CPU supports, or SWIFTRCNN_ISA when that names a supported path. Static storage. */
const char *srcnn_isa(void);
/* Switches the path; SRCNN_VALUE_ERROR for an unknown name or a path this CPU lacks (the message says which
 * features are missing). Not to be called while ops run on other threads. */
int32_t srcnn_set_isa(const char *name, char *err);
/* 1 when this build holds the path and this CPU can run it, else 0. */
int32_t srcnn_isa_supported(const char *name);
/* 1 and the reason in `err` (capacity SRCNN_ERR_CAPACITY) when SWIFTRCNN_ISA was set but could not be followed,
 * else 0. */
int32_t srcnn_isa_environment_error(char *err);
/* The configuration report (CPU, instruction sets, paths, threads, build target), NUL-terminated and truncated to
 * `capacity` bytes; returns its full length in bytes (without the NUL). */
int64_t srcnn_config_report(char *out, int64_t capacity);

/* ---- Boxes (torchvision.ops.boxes) ------------------------------------------------------------------------------ */

typedef enum srcnn_iou_kind {
    SRCNN_IOU = 0,
    SRCNN_GENERALIZED_IOU = 1,
    SRCNN_DISTANCE_IOU = 2,
    SRCNN_COMPLETE_IOU = 3
} srcnn_iou_kind;

typedef enum srcnn_box_format { SRCNN_XYXY = 0, SRCNN_XYWH = 1, SRCNN_CXCYWH = 2 } srcnn_box_format;

/* boxes (N, 4) -> out (N,). */
int32_t srcnn_box_area(const srcnn_array *boxes, srcnn_array *out, char *err);
/* Pairwise IoU of a kind: boxes1 (N, 4), boxes2 (M, 4) -> out (N, M). `eps` is used by distance and complete IoU. */
int32_t srcnn_box_iou(const srcnn_array *boxes1, const srcnn_array *boxes2, int32_t kind, double eps, srcnn_array *out,
                      char *err);
/* boxes (N, 4) in `in_fmt` -> out (N, 4) in `out_fmt` (srcnn_box_format values). */
int32_t srcnn_box_convert(const srcnn_array *boxes, int32_t in_fmt, int32_t out_fmt, srcnn_array *out, char *err);
/* Clamps x to [0, width] and y to [0, height]: boxes (N, 4) -> out (N, 4). */
int32_t srcnn_clip_boxes_to_image(const srcnn_array *boxes, int64_t height, int64_t width, srcnn_array *out, char *err);
/* masks (N, H, W) uint8 -> boxes (N, 4) float32: the (x1, y1, x2, y2) pixel indices (inclusive) around each mask's
   non-zero pixels, (0, 0, 0, 0) for an empty mask. */
int32_t srcnn_masks_to_boxes(const srcnn_array *masks, srcnn_array *boxes, char *err);
/* Indices of boxes whose width and height are both >= min_size: boxes (N, 4) -> keep (N,) int64, *count used. */
int32_t srcnn_remove_small_boxes(const srcnn_array *boxes, double min_size, srcnn_array *keep, int64_t *count,
                                 char *err);

/* ---- Suppression ------------------------------------------------------------------------------------------------ */

/* Greedy NMS: boxes (N, 4), scores (N,) -> keep (N,) int64 in decreasing score order, *count used.
   Boxes or scores containing NaN are a value error. Any iou_threshold is accepted, as in torchvision: 1 or more (or
   NaN) suppresses nothing, a negative one every box whose IoU with a kept box is a number. */
int32_t srcnn_nms(const srcnn_array *boxes, const srcnn_array *scores, double iou_threshold, srcnn_array *keep,
                  int64_t *count, char *err);
/* NMS independently per category: idxs (N,) int64 category of each box. keep as srcnn_nms. */
int32_t srcnn_batched_nms(const srcnn_array *boxes, const srcnn_array *scores, const srcnn_array *idxs,
                          double iou_threshold, srcnn_array *keep, int64_t *count, char *err);

typedef enum srcnn_soft_nms_method {
    SRCNN_SOFT_NMS_LINEAR = 0,  /* s *= 1 - iou when iou > iou_threshold       */
    SRCNN_SOFT_NMS_GAUSSIAN = 1 /* s *= exp(-iou^2 / sigma)                      */
} srcnn_soft_nms_method;

/* Soft-NMS (Bodla et al. 2017): keep (N,) int64 and kept_scores (N,) (decayed, same dtype as scores), in the order
   the boxes were selected; boxes whose decayed score falls below score_threshold are dropped. *count used. */
int32_t srcnn_soft_nms(const srcnn_array *boxes, const srcnn_array *scores, int32_t method, double iou_threshold,
                       double sigma, double score_threshold, srcnn_array *keep, srcnn_array *kept_scores,
                       int64_t *count, char *err);

/* ---- RoI ops (torchvision.ops.roi_align, roi_pool, ps_roi_align, ps_roi_pool) --------------------------------- */
/* input (N, C, H, W); rois (K, 5) rows [batch_index, x1, y1, x2, y2] with batch_index in [0, N) and finite coords. */

/* output (K, C, pooled_h, pooled_w). sampling_ratio <= 0 means adaptive: ceil(roi_size / pooled_size) per bin. */
int32_t srcnn_roi_align(const srcnn_array *input, const srcnn_array *rois, int64_t pooled_h, int64_t pooled_w,
                        double spatial_scale, int64_t sampling_ratio, int32_t aligned, srcnn_array *output, char *err);
/* grad_output (K, C, PH, PW) -> grad_input (N, C, H, W), overwritten (not accumulated into). */
int32_t srcnn_roi_align_backward(const srcnn_array *grad_output, const srcnn_array *rois, double spatial_scale,
                                 int64_t sampling_ratio, int32_t aligned, srcnn_array *grad_input, char *err);
/* output (K, C, PH, PW); argmax (K, C, PH, PW) int64: index in the H*W plane of the max, -1 for an empty bin;
   argmax may be NULL when not wanted. */
int32_t srcnn_roi_pool(const srcnn_array *input, const srcnn_array *rois, int64_t pooled_h, int64_t pooled_w,
                       double spatial_scale, srcnn_array *output, SRCNN_OPTIONAL srcnn_array *argmax, char *err);
/* grad_output and argmax (K, C, PH, PW) -> grad_input (N, C, H, W). rois (K, 5) supplies each RoI's image; it may
   be NULL when N == 1. argmax values must lie in [-1, H*W). */
int32_t srcnn_roi_pool_backward(const srcnn_array *grad_output, SRCNN_OPTIONAL const srcnn_array *rois,
                                const srcnn_array *argmax, srcnn_array *grad_input, char *err);
/* Position-sensitive: C must be a multiple of PH*PW; output (K, C / (PH*PW), PH, PW). */
int32_t srcnn_ps_roi_align(const srcnn_array *input, const srcnn_array *rois, int64_t pooled_h, int64_t pooled_w,
                           double spatial_scale, int64_t sampling_ratio, srcnn_array *output, char *err);
int32_t srcnn_ps_roi_align_backward(const srcnn_array *grad_output, const srcnn_array *rois, double spatial_scale,
                                    int64_t sampling_ratio, srcnn_array *grad_input, char *err);
int32_t srcnn_ps_roi_pool(const srcnn_array *input, const srcnn_array *rois, int64_t pooled_h, int64_t pooled_w,
                          double spatial_scale, srcnn_array *output, char *err);
int32_t srcnn_ps_roi_pool_backward(const srcnn_array *grad_output, const srcnn_array *rois, double spatial_scale,
                                   srcnn_array *grad_input, char *err);

/* torchvision.ops.MultiScaleRoIAlign: features[num_levels] (B, C, H_l, W_l); rois (K, 5); image_shapes
   (num_images, 2) int64 (h, w) of the images before padding. Scales are inferred as powers of two from the
   feature sizes, each RoI is pooled from level floor(canonical_level + log2(sqrt(area) / canonical_scale) + 1e-6)
   clamped to the available levels, with aligned = false. output (K, C, pooled_h, pooled_w). */
int32_t srcnn_multiscale_roi_align(SRCNN_LIST(num_levels) const srcnn_array *features, int64_t num_levels,
                                   const srcnn_array *rois, const srcnn_array *image_shapes, int64_t pooled_h,
                                   int64_t pooled_w, int64_t sampling_ratio, int64_t canonical_scale,
                                   int64_t canonical_level, srcnn_array *output, char *err);

/* ---- Anchors ---------------------------------------------------------------------------------------------------- */

/* torchvision AnchorGenerator for one image with L levels: level l has num_sizes[l] sizes and num_ratios[l] aspect
   ratios (num_sizes, num_ratios (L,) int64; the values concatenated over levels in `sizes` and `aspect_ratios`,
   float64 vectors), a feature map of feature_hw[l] = (h_l, w_l) ((L, 2) int64) over an (image_h, image_w) padded
   batch. anchors (sum_l h_l * w_l * num_sizes[l] * num_ratios[l], 4). */
int32_t srcnn_anchor_generator(const srcnn_array *sizes, const srcnn_array *num_sizes, const srcnn_array *aspect_ratios,
                               const srcnn_array *num_ratios, int64_t image_h, int64_t image_w,
                               const srcnn_array *feature_hw, srcnn_array *anchors, char *err);

/* py-faster-rcnn conventions (widths are x2 - x1 + 1). ratios (R,), scales (S,) float64 -> anchors (R * S, 4)
   float64. */
int32_t srcnn_legacy_generate_anchors(double base_size, const srcnn_array *ratios, const srcnn_array *scales,
                                      srcnn_array *anchors, char *err);
/* ex_rois, gt_rois (N, 4) -> targets (N, 4) [dx, dy, dw, dh]. */
int32_t srcnn_legacy_bbox_transform(const srcnn_array *ex_rois, const srcnn_array *gt_rois, srcnn_array *targets,
                                    char *err);
/* boxes (N, 4), deltas (N, 4k) -> pred (N, 4k). */
int32_t srcnn_legacy_bbox_transform_inv(const srcnn_array *boxes, const srcnn_array *deltas, srcnn_array *pred,
                                        char *err);
/* boxes (N, 4k) clipped to [0, im_w - 1] x [0, im_h - 1] -> out (N, 4k). */
int32_t srcnn_legacy_clip_boxes(const srcnn_array *boxes, double im_h, double im_w, srcnn_array *out, char *err);
/* dets (N, 5) rows [x1, y1, x2, y2, score] -> keep (N,) int64, *count used. */
int32_t srcnn_legacy_nms(const srcnn_array *dets, double threshold, srcnn_array *keep, int64_t *count, char *err);

/* ---- Box coding (torchvision.models.detection._utils.BoxCoder) -------------------------------------------------- */

/* reference_boxes, proposals (N, 4) -> targets (N, 4). weights (4,) float64: (wx, wy, ww, wh). */
int32_t srcnn_box_encode(const srcnn_array *reference_boxes, const srcnn_array *proposals, const srcnn_array *weights,
                         srcnn_array *targets, char *err);
/* rel_codes (N, 4k), boxes (N, 4) -> pred_boxes (N, 4k). dw, dh are clamped to bbox_xform_clip before exp. */
int32_t srcnn_box_decode(const srcnn_array *rel_codes, const srcnn_array *boxes, const srcnn_array *weights,
                         double bbox_xform_clip, srcnn_array *pred_boxes, char *err);

/* ---- Matching and sampling (torchvision.models.detection._utils) ------------------------------------------------ */

/* quality (M ground truths, N predictions) -> matches (N,) int64: gt index, -1 below low, -2 between. */
int32_t srcnn_matcher(const srcnn_array *quality, double high_threshold, double low_threshold,
                      int32_t allow_low_quality_matches, srcnn_array *matches, char *err);
/* matched_idxs (N,) int64 (>= 1 positive, 0 negative, < 0 ignored) -> pos_mask, neg_mask (N,) uint8. */
int32_t srcnn_balanced_sampler(const srcnn_array *matched_idxs, int64_t batch_size_per_image, double positive_fraction,
                               uint64_t seed, srcnn_array *pos_mask, srcnn_array *neg_mask, char *err);

/* ---- Masks (torchvision.models.detection.roi_heads.paste_masks_in_image) --------------------------------------- */

/* masks (N, 1, M, M), boxes (N, 4) -> out (N, 1, img_h, img_w). */
int32_t srcnn_paste_masks_in_image(const srcnn_array *masks, const srcnn_array *boxes, int64_t img_h, int64_t img_w,
                                   int64_t padding, srcnn_array *out, char *err);

/* ---- Linear algebra --------------------------------------------------------------------------------------------- */

/* out (m, n) = op(a) · op(b), where op(x) is x, or its transpose when transpose_x is 1 (0 or 1 only): a (m, k) or
   (k, m), b (k, n) or (n, k), all 2-D float arrays of one dtype. out must not overlap a or b. k = 0 gives zeros. */
int32_t srcnn_matmul(const srcnn_array *a, const srcnn_array *b, int32_t transpose_a, int32_t transpose_b,
                     srcnn_array *out, char *err);

/* ---- Detection models (torchvision.models.detection, eval mode) ------------------------------------------------ */

/* A Faster / Mask R-CNN with a ResNet-50-FPN backbone, built from a torchvision state dict. Immutable once created:
   calls on one model may run concurrently. */
typedef struct srcnn_model srcnn_model;
/* A list of named arrays a model call returns, owned by the library until srcnn_arrays_free. */
typedef struct srcnn_arrays srcnn_arrays;

typedef enum srcnn_model_kind {
    SRCNN_FASTER_RCNN = 0,  /* fasterrcnn_resnet50_fpn */
    SRCNN_MASK_RCNN = 1,    /* maskrcnn_resnet50_fpn   */
    SRCNN_KEYPOINT_RCNN = 2 /* keypointrcnn_resnet50_fpn */
} srcnn_model_kind;

/* The eval-mode arguments of torchvision's builders (same names; torchvision's defaults in brackets). */
typedef struct srcnn_model_config {
    int32_t kind;                    /* an srcnn_model_kind                                   */
    int64_t num_classes;             /* [91] including the background, 1 ... 2^20           */
    double min_size, max_size;       /* [800, 1333] resize bounds, 1 ... 32768 (fractions ok) */
    double image_mean[3];            /* [0.485, 0.456, 0.406] finite                          */
    double image_std[3];             /* [0.229, 0.224, 0.225] finite, non-zero               */
    int64_t rpn_pre_nms_top_n_test;  /* [1000] >= 0                                           */
    int64_t rpn_post_nms_top_n_test; /* [1000] >= 0                                           */
    double rpn_nms_thresh;           /* [0.7] any (see srcnn_nms)                             */
    double rpn_score_thresh;         /* [0.0] not NaN                                         */
    double box_score_thresh;         /* [0.05] not NaN                                        */
    double box_nms_thresh;           /* [0.5] any (see srcnn_nms)                             */
    int64_t box_detections_per_img;  /* [100] >= 0                                           */
    const char *architecture;        /* [NULL] the parts, as JSON (below); NULL: ResNet-50-FPN */
} srcnn_model_config;

/* srcnn_model_config.architecture, torchvision's FasterRCNN(backbone, num_classes, rpn_anchor_generator, rpn_head,
   box_roi_pool, box_head, ...) arguments as a JSON object (NUL-terminated UTF-8, at most 1 MiB). Every member is
   optional and defaults to fasterrcnn_resnet50_fpn's / maskrcnn_resnet50_fpn's part; unknown members are an error:
     "backbone": {"type": "resnet50_fpn", "fpn_norm" [false]} (levels "0" ... "3", "pool"; fpn_norm: the v2 models'
         FPN with batch norms), or {"type": "sequential", "layers": [...]}, an nn.Sequential described module by
         module (state-dict keys backbone.<index>.*), giving level "0". Layers:
         {"type": "conv2d", "in_channels", "out_channels", "kernel_size", "stride" [1], "padding" [0], "bias" [true]},
         {"type": "batch_norm2d", "num_features", "eps" [1e-5]} (right after a conv2d), {"type": "relu"},
         {"type": "max_pool2d", "kernel_size", "stride" [kernel_size], "padding" [0]},
         {"type": "resnet_layer", "in_channels", "width", "blocks", "stride" [1]} (torchvision's ResNet _make_layer
         of bottlenecks, frozen norms), {"type": "adaptive_avg_pool2d", "output_size" [1]}, {"type": "flatten"},
         {"type": "linear", "in_features", "out_features", "bias" [true]}, {"type": "sequential", "layers"};
     "anchor_sizes", "aspect_ratios": one list of numbers per level [FPN: (32,) ... (512,) x (0.5, 1, 2); a single
         map: (128, 256, 512) x (0.5, 1, 2)];
     "rpn_head": {"conv_depth" [1]};
     "box_roi_pool": {"type": "multi_scale_roi_align", "featmap_names" ["0" ... "3"], "output_size" [7],
         "sampling_ratio" [2]} or {"type": "roi_pool", "featmap_name" ["0"], "output_size", "spatial_scale"}
         (torchvision.ops.roi_pool on that map);
     "box_head": {"type": "two_mlp_head", "representation_size" [1024]} or {"type": "sequential", "layers"} ending
         with flattened features (keys roi_heads.box_head.<index>.*);
     "mask_roi_pool": as box_roi_pool, multi_scale_roi_align only [output_size 14];
     "mask_head": {"layers" [256 x 4], "norm" [false]}; "mask_predictor": {"dim_reduced" [256]};
     "keypoint_roi_pool": as mask_roi_pool; "keypoint_head": {"layers" [512 x 8]} (keys keypoint_head.0, .2, ...);
     "keypoint_predictor": {"num_keypoints" [17]}. */

/* Builds a model from `count` state-dict entries: names[i] (NUL-terminated, torchvision's keys) and arrays[i]
   (float32, torchvision's shapes). Like load_state_dict(strict=True), every key the model needs must be present
   with its shape and every given key must be used (BatchNorm `num_batches_tracked` entries excepted); one error
   counts the missing, mis-shaped and unexpected keys and names the first few of each kind. The weights are
   copied: the arrays may be freed afterwards. On success *model receives a model to release with srcnn_model_free. */
int32_t srcnn_model_create(const srcnn_model_config *config, const char *const *names, const srcnn_array *arrays,
                           int64_t count, srcnn_model **model, char *err);
/* Releases a model (NULL is ignored). */
void srcnn_model_free(srcnn_model *model);

/* images[num_images]: (3, H_i, W_i) float32 arrays with finite values and H_i, W_i >= 1, num_images >= 1.
   The padded batch (N·H·W after resizing and padding) may hold at most 2^24 pixels (a memory error otherwise).
   Both functions return their results as named arrays in *out (release with srcnn_arrays_free). */

/* GeneralizedRCNNTransform: "images" (N, 3, H, W) float32, the normalised, resized, zero-padded batch (H, W
   multiples of 32), and "image_sizes" (N, 2) int64, each image's (height, width) after resizing. */
int32_t srcnn_model_transform(const srcnn_model *model, const srcnn_array *images, int64_t num_images,
                              srcnn_arrays **out, char *err);
/* The transform and the backbone: "0", "1", "2", "3", "pool" (N, 256, H_l, W_l) float32, the FPN levels of the
   padded batch at strides 4, 8, 16, 32, 64, then "image_sizes" as above. */
int32_t srcnn_model_features(const srcnn_model *model, const srcnn_array *images, int64_t num_images,
                             srcnn_arrays **out, char *err);
/* The whole model, as torchvision's eval-mode forward: for each image i, "boxes.i" (D_i, 4) float32 in the
   original image's pixels, "labels.i" (D_i,) int64, "scores.i" (D_i,) float32 and, for Mask R-CNN, "masks.i"
   (D_i, 1, H_i, W_i) float32 mask probabilities pasted at the original size, for Keypoint R-CNN "keypoints.i"
   (D_i, K, 3) float32 rows (x, y, 1) and "keypoints_scores.i" (D_i, K) float32. */
int32_t srcnn_model_detect(const srcnn_model *model, const srcnn_array *images, int64_t num_images, srcnn_arrays **out,
                           char *err);

/* Number of arrays in a result (0 for NULL). */
int64_t srcnn_arrays_count(const srcnn_arrays *arrays);
/* The name (static until srcnn_arrays_free) and the dtype and shape (data NULL) of array `index`. */
int32_t srcnn_arrays_info(const srcnn_arrays *arrays, int64_t index, const char **name, srcnn_array *info, char *err);
/* Copies array `index` into `out`, which must have exactly its dtype and shape (not after srcnn_arrays_take). */
int32_t srcnn_arrays_read(const srcnn_arrays *arrays, int64_t index, srcnn_array *out, char *err);
/* One array moved out of a result, owned by the caller until srcnn_buffer_free. */
typedef struct srcnn_buffer srcnn_buffer;
/* Moves array `index` out of the result without copying it: *info receives its dtype, shape and data (C-contiguous,
   writable, NULL when it has no elements), valid until srcnn_buffer_free(*owner), whether or not the result is
   freed first. Afterwards srcnn_arrays_info still describes the array, but reading or taking it again fails. Not
   for concurrent use on one result. */
int32_t srcnn_arrays_take(srcnn_arrays *arrays, int64_t index, srcnn_array *info, srcnn_buffer **owner, char *err);
/* Releases a taken array (NULL is ignored). */
void srcnn_buffer_free(srcnn_buffer *owner);
/* Releases a result (NULL is ignored). */
void srcnn_arrays_free(srcnn_arrays *arrays);
/* ---- Training (torchvision's train mode) ------------------------------------------------------------------------ */

/* A Faster / Mask R-CNN being trained: its state dict in torchvision's parameterisation, the gradients of the trainable
   parameters and the SGD momentum buffers. Not for concurrent use: a call while another runs on the same trainer fails
   with a value error. */
typedef struct srcnn_trainer srcnn_trainer;

/* Most sizes srcnn_training_config.min_sizes holds. */
#define SRCNN_MAX_MIN_SIZES 64

/* The training arguments of torchvision's builders (same names; torchvision's defaults in brackets). */
typedef struct srcnn_training_config {
    int64_t rpn_pre_nms_top_n_train;       /* [2000] >= 0                                               */
    int64_t rpn_post_nms_top_n_train;      /* [2000] >= 0                                               */
    double rpn_fg_iou_thresh;              /* [0.7]                                                     */
    double rpn_bg_iou_thresh;              /* [0.3]                                                     */
    int64_t rpn_batch_size_per_image;      /* [256] >= 0                                                */
    double rpn_positive_fraction;          /* [0.5] 0 ... 1                                             */
    double box_fg_iou_thresh;              /* [0.5]                                                     */
    double box_bg_iou_thresh;              /* [0.5]                                                     */
    int64_t box_batch_size_per_image;      /* [512] >= 0                                                */
    double box_positive_fraction;          /* [0.25] 0 ... 1                                            */
    double bbox_reg_weights[4];            /* [10, 10, 5, 5] the box head's BoxCoder weights             */
    int32_t trainable_backbone_layers;     /* [3] 0 ... 5, from layer4 down to conv1                     */
    int64_t num_min_sizes;                 /* 0 ... SRCNN_MAX_MIN_SIZES; 0: the model config's min_size */
    double min_sizes[SRCNN_MAX_MIN_SIZES]; /* one chosen at random per batch (torchvision's tuple)     */
    uint64_t seed;                         /* seeds every random choice; a seeded run replays exactly  */
} srcnn_training_config;

/* Builds a trainer from a state dict, checked as srcnn_model_create checks it. The parameters torchvision trains get
   gradients: every convolution and linear layer outside the ResNet body, and in the body the convolutions of the last
   trainable_backbone_layers of conv1, layer1 ... layer4 (batch norms stay frozen: FrozenBatchNorm2d). */
int32_t srcnn_trainer_create(const srcnn_model_config *config, const srcnn_training_config *training,
                             const char *const *names, const srcnn_array *arrays, int64_t count,
                             srcnn_trainer **trainer, char *err);
/* Releases a trainer (NULL is ignored). */
void srcnn_trainer_free(srcnn_trainer *trainer);

/* torchvision's train-mode forward on images[num_images] (as srcnn_model_detect) with targets: boxes[i] (G_i, 4)
   float32 xyxy with positive width and height, labels[i] (G_i,) int64 in 0 ... num_classes - 1, and for Mask R-CNN
   masks[i] (G_i, H_i, W_i) uint8 at the image's size (masks may be NULL for Faster R-CNN); G_i may be 0. When
   `backward` is non-zero the gradient of the summed losses is added to the parameters' gradients. Results:
   "loss_classifier", "loss_box_reg", ("loss_mask",) "loss_objectness", "loss_rpn_box_reg" float32 of shape (),
   "min_size" float32 (), "image_sizes" (N, 2) int64, and per image i what was drawn at random: "proposals.i" (P_i, 4)
   float32, "rpn_positive.i" / "rpn_negative.i" int64 indices of the sampled anchors (in torchvision's anchor order),
   "roi_positive.i" / "roi_negative.i" int64 indices of the sampled proposals in proposals.i followed by the image's
   resized boxes. */
int32_t srcnn_trainer_forward(srcnn_trainer *trainer, const srcnn_array *images, int64_t num_images,
                              const srcnn_array *boxes, const srcnn_array *labels, const srcnn_array *masks,
                              int32_t backward, srcnn_arrays **out, char *err);
/* The backward pass of the last srcnn_trainer_forward with backward = 0 (which keeps its activations until then):
   adds the gradient of its summed losses to the parameters' gradients, once; a value error when there is none. A
   later forward pass or SGD step discards a pending backward pass. */
int32_t srcnn_trainer_backward(srcnn_trainer *trainer, char *err);
/* Sets every gradient to zero. */
int32_t srcnn_trainer_zero_grad(srcnn_trainer *trainer, char *err);
/* One torch.optim.SGD step (dampening 0, no Nesterov) of every trainable parameter from its gradient. */
int32_t srcnn_trainer_sgd_step(srcnn_trainer *trainer, double lr, double momentum, double weight_decay, char *err);
/* which = 0: the whole state dict (torchvision's names, float32); 1: the gradients of the trainable parameters; 2: the
   SGD momentum buffers (those that exist: momentum was used) by parameter name, and "steps", an int64 scalar: the
   forward passes taken, which seed the next one's random choices. Saved with the weights, 2 is what
   srcnn_trainer_restore needs to continue a run exactly. */
int32_t srcnn_trainer_state(srcnn_trainer *trainer, int32_t which, srcnn_arrays **out, char *err);
/* Restores what srcnn_trainer_state(2) returned, on a trainer built from the weights saved with it: the momentum
   buffers (`count` float32 arrays named by trainable parameters, each of that parameter's shape; the others are
   cleared) and the step counter (>= 0). Any unknown, frozen or mis-shaped name is a value error, and then nothing
   changes. */
int32_t srcnn_trainer_restore(srcnn_trainer *trainer, SRCNN_LIST(count) const char *const *names,
                              SRCNN_LIST(count) const srcnn_array *momentum, int64_t count, int64_t steps, char *err);
/* srcnn_model_detect with the trainer's current parameters (eval mode). */
int32_t srcnn_trainer_detect(srcnn_trainer *trainer, const srcnn_array *images, int64_t num_images, srcnn_arrays **out,
                             char *err);

/* ---- Initialisation (torchvision's constructors) -------------------------------------------------------------- */

/* The state dict torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn constructor (or, with `architecture`,
   the general builder's FasterRCNN / MaskRCNN of those parts) gives a model built for pretrained weights (FrozenBatchNorm2d: weight 1, bias 0, running_mean 0, running_var 1, no num_batches_tracked),
   every other tensor drawn from the distribution torchvision draws it from (kaiming normal or uniform, normal, the
   layers' defaults: Sources/Core/Training/Initialization.swift lists them) with values from `seed`. A tensor's values
   depend on the seed and its name alone, not on the thread count. kind: an srcnn_model_kind; num_classes 1 ... 2^20.
   predictors_only non-zero: only the tensors shaped by num_classes, those loading a checkpoint for another number of
   classes re-initialises: roi_heads.box_predictor.cls_score.{weight,bias}, roi_heads.box_predictor.bbox_pred.{weight,
   bias} and, for Mask R-CNN, roi_heads.mask_predictor.mask_fcn_logits.{weight,bias}. Results: float32 arrays named by
   their torchvision keys, in sorted order (release with srcnn_arrays_free). architecture: NULL for ResNet-50-FPN, or
   the JSON of srcnn_model_config.architecture; sequential layers start as torchvision's modules do (Conv2d and Linear
   by their reset_parameters, batch norms at identity, ResNet layers as ResNet initialises them). Architectures the
   trainer does not cover (batch norms in the FPN or mask head, a deeper RPN head) and kind SRCNN_KEYPOINT_RCNN are a
   value error. */
int32_t srcnn_initial_state(int32_t kind, int64_t num_classes, uint64_t seed, int32_t predictors_only,
                            const char *architecture, srcnn_arrays **out, char *err);

/* ---- Detection stages: TEST-ONLY exports, NOT part of the stable API ------------------------------------------ */
/* srcnn_rpn_proposals, srcnn_roi_heads_detect and the training steps below exist for the parity tests (Tests/python,
   Tests/CoreTests), which compare the detector with torchvision stage by stage (implemented in
   Sources/Core/ABI/Testing/). Their arguments follow the components' internals and may change or disappear in any
   release; applications run whole models through srcnn_model_*. */
/* Each function builds one component of torchvision's Faster / Mask R-CNN from a state dict and runs it once in eval
   mode on the caller's feature maps. Weights are `num_weights` NUL-terminated UTF-8 `names` with float32 arrays in
   `weights`; keys outside the component's prefix are ignored (their arrays are not read), keys under it must match
   the component exactly (missing, mismatched or unexpected keys are a value error listing them). `features` holds
   `num_levels` float32 (N, C, H_l, W_l) maps, finest first, of one batch size N and channel count C.
   `image_sizes` (N, 2) int64 rows (height, width) are the images' sizes after resizing, before padding.
   Results have room for the most a component can return: image i's results are the first counts[i] rows of its
   slice, in decreasing score order, and the remaining rows are zero. */

/* RegionProposalNetwork (prefix "rpn."): anchors of level l have num_sizes[l] sizes and num_ratios[l] aspect ratios
   (float64 vectors concatenated over levels in `anchor_sizes` and `aspect_ratios`; (L,) int64 counts, as
   srcnn_anchor_generator), the same number per
   location on every level, over a padded batch of batch_h x batch_w. boxes (N, post_nms_top_n, 4) and scores
   (N, post_nms_top_n) float32 (objectness probabilities), counts (N,) int64. */
int32_t srcnn_rpn_proposals(SRCNN_LIST(num_weights) const char *const *names,
                            SRCNN_LIST(num_weights) const srcnn_array *weights, int64_t num_weights,
                            SRCNN_LIST(num_levels) const srcnn_array *features, int64_t num_levels,
                            const srcnn_array *image_sizes, int64_t batch_h, int64_t batch_w,
                            const srcnn_array *anchor_sizes, const srcnn_array *num_sizes,
                            const srcnn_array *aspect_ratios, const srcnn_array *num_ratios, int64_t pre_nms_top_n,
                            int64_t post_nms_top_n, double nms_thresh, double score_thresh, srcnn_array *boxes,
                            srcnn_array *scores, srcnn_array *counts, char *err);

/* RoIHeads (prefix "roi_heads.") of Faster R-CNN (masks = 0) or Mask R-CNN (masks = 1) with num_classes classes
   (background included): `features` are the maps pooled from (torchvision: FPN levels "0" ... "3"); proposals
   (P, 4) float32 (finite) hold every image's proposals in turn, proposal_counts (N,) int64 of them per image.
   With D = detections_per_img: boxes (N, D, 4) and scores (N, D) float32, labels (N, D) int64, counts (N,) int64,
   and when masks = 1 mask_probs (N, D, 1, 28, 28) float32 (each detection's mask probabilities before pasting;
   may be NULL when masks = 0). */
int32_t srcnn_roi_heads_detect(SRCNN_LIST(num_weights) const char *const *names,
                               SRCNN_LIST(num_weights) const srcnn_array *weights, int64_t num_weights,
                               int64_t num_classes, int32_t masks, SRCNN_LIST(num_levels) const srcnn_array *features,
                               int64_t num_levels, const srcnn_array *proposals, const srcnn_array *proposal_counts,
                               const srcnn_array *image_sizes, double score_thresh, double nms_thresh,
                               int64_t detections_per_img, srcnn_array *boxes, srcnn_array *scores, srcnn_array *labels,
                               SRCNN_OPTIONAL srcnn_array *mask_probs, srcnn_array *counts, char *err);

/* Training targets, samplers and losses of torchvision's train mode (Sources/Core/Training), one function per step, on
   float32 arrays. Boxes are (x1, y1, x2, y2) in pixels of the resized image; a sampler's masks are uint8 0 / 1. Each
   loss function returns the losses and the gradient of their sum with respect to its predictions. */

/* RegionProposalNetwork.assign_targets_to_anchors and box_coder.encode for one image: anchors (A, 4), gt_boxes (G, 4)
   (G may be 0: every label 0) -> labels (A,) float32 (1 foreground, 0 background, -1 ignored) and
   regression_targets (A, 4) float32 (the matched box encoded relative to the anchor, weights 1, 1, 1, 1). */
int32_t srcnn_rpn_assign_targets(const srcnn_array *anchors, const srcnn_array *gt_boxes, double fg_iou_thresh,
                                 double bg_iou_thresh, srcnn_array *labels, srcnn_array *regression_targets, char *err);
/* The RPN's BalancedPositiveNegativeSampler for one image: labels (A,) float32 as above -> positive, negative (A,). */
int32_t srcnn_rpn_sample(const srcnn_array *labels, int64_t batch_size_per_image, double positive_fraction,
                         uint64_t seed, srcnn_array *positive, srcnn_array *negative, char *err);
/* RegionProposalNetwork.compute_loss over the images' anchors concatenated: objectness (A,), pred_bbox_deltas (A, 4),
   labels (A,), regression_targets (A, 4) float32, positive and negative (A,) uint8 -> losses (2,) float32
   [loss_objectness, loss_rpn_box_reg], objectness_grad (A,) and deltas_grad (A, 4) float32. No sampled anchor gives
   zero losses and gradients (torchvision: NaN). */
int32_t srcnn_rpn_loss(const srcnn_array *objectness, const srcnn_array *pred_bbox_deltas, const srcnn_array *labels,
                       const srcnn_array *regression_targets, const srcnn_array *positive, const srcnn_array *negative,
                       srcnn_array *losses, srcnn_array *objectness_grad, srcnn_array *deltas_grad, char *err);
/* RoIHeads.select_training_samples for one image: proposals (P, 4) float32, gt_boxes (G, 4) float32 and gt_labels
   (G,) int64 (G may be 0), box coder weights (wx, wy, ww, wh). The S sampled rows of proposals followed by gt_boxes,
   in ascending order, are the first *count rows of sampled_proposals (P + G, 4) float32, labels (P + G,) int64,
   regression_targets (P + G, 4) float32, matched_idxs (P + G,) int64 (0 where none) and sampled_idxs (P + G,) int64
   (their rows in proposals followed by gt_boxes); the other rows are zero. */
int32_t srcnn_roi_heads_select_training_samples(
    const srcnn_array *proposals, const srcnn_array *gt_boxes, const srcnn_array *gt_labels, double fg_iou_thresh,
    double bg_iou_thresh, int64_t batch_size_per_image, double positive_fraction, double weight_x, double weight_y,
    double weight_w, double weight_h, uint64_t seed, srcnn_array *sampled_proposals, srcnn_array *labels,
    srcnn_array *regression_targets, srcnn_array *matched_idxs, srcnn_array *sampled_idxs, int64_t *count, char *err);
/* roi_heads.fastrcnn_loss: class_logits (S, K), box_regression (S, 4 K) float32, labels (S,) int64 in 0 ... K - 1,
   regression_targets (S, 4) float32 -> losses (2,) float32 [loss_classifier, loss_box_reg], class_logits_grad (S, K)
   and box_regression_grad (S, 4 K) float32. S = 0 gives zero losses (torchvision: NaN). */
int32_t srcnn_fastrcnn_loss(const srcnn_array *class_logits, const srcnn_array *box_regression,
                            const srcnn_array *labels, const srcnn_array *regression_targets, srcnn_array *losses,
                            srcnn_array *class_logits_grad, srcnn_array *box_regression_grad, char *err);
/* roi_heads.maskrcnn_loss: mask_logits (P, K, M, M) float32 of the images' foreground samples in turn, proposal_counts
   (N,) int64 of them per image, their proposals (P, 4) float32, labels (P,) int64 in 0 ... K - 1 and matched_idxs
   (P,) int64 (into the image's masks), and per image gt_masks[i] (G_i, H_i, W_i) uint8 -> loss (1,) float32 and
   mask_logits_grad (P, K, M, M) float32. */
int32_t srcnn_maskrcnn_loss(const srcnn_array *mask_logits, const srcnn_array *proposal_counts,
                            const srcnn_array *proposals, const srcnn_array *labels, const srcnn_array *matched_idxs,
                            SRCNN_LIST(num_images) const srcnn_array *gt_masks, int64_t num_images, srcnn_array *loss,
                            srcnn_array *mask_logits_grad, char *err);

#ifdef __cplusplus
}
#endif

#endif /* SWIFTRCNN_H */
