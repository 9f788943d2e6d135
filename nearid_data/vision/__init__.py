"""What segment, distractors, personalize and evaluate share about images and models: mask
operations, batched model inference and loading, and the image embedders."""
