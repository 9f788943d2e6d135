"""Subject segmentation: detectors (boxes from text), segmenters (masks from boxes), mask operations."""
