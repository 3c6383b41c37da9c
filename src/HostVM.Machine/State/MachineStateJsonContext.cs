using System.Text.Json.Serialization;

namespace HostVM.Machine.State;

/// <summary>The machine state section's JSON, source-generated: enums by name, so that renumbering one cannot load wrong.</summary>
[JsonSourceGenerationOptions(
    UseStringEnumConverter = true,
    Converters = [typeof(ImmutableBytesJsonConverter)],
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(MachineStateDocument))]
internal sealed partial class MachineStateJsonContext : JsonSerializerContext;
