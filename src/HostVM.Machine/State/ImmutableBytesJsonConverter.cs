using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace HostVM.Machine.State;

/// <summary>Bytes held in state records (frames, console input) as base64, as JSON writes a byte[], not as a list of numbers.</summary>
public sealed class ImmutableBytesJsonConverter : JsonConverter<ImmutableArray<byte>>
{
    public override ImmutableArray<byte> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        [.. reader.GetBytesFromBase64()];

    public override void Write(Utf8JsonWriter writer, ImmutableArray<byte> value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteBase64StringValue(value.AsSpan());
    }
}
