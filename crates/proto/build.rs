use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "redress/v1/envelope.proto",
        "redress/v1/intake.proto",
        "redress/v1/lifecycle.proto",
        "redress/v1/commands.proto",
    ];
    // protox compiles in-process, so building never needs `protoc` on the machine.
    let descriptors = protox::compile(files, [&root])?;
    // The descriptors themselves, for tools that show messages as JSON without knowing them
    // (`redress playbook simulate`).
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;
    for f in files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    Ok(())
}
