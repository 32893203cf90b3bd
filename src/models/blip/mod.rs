//! BLIP (image captioning and visual question answering). So far: the image preprocessing of
//! BlipProcessor; the three-graph pipeline, the trained model and its exporter are still to come.

pub mod preprocess;
