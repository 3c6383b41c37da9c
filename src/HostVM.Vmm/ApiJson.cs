using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace HostVM.Vmm;

/// <summary>Reads a request body into an API record; every way it can be wrong becomes a <see cref="VmmFault"/> that names the field.</summary>
public static class ApiJson
{
    public static T Parse<T>(ReadOnlySpan<byte> body, JsonTypeInfo<T> type)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(type);
        if (body.IsEmpty)
        {
            throw new VmmFault("The request needs a JSON body.");
        }

        T? value;
        try
        {
            value = JsonSerializer.Deserialize(body, type);
        }
        catch (JsonException e)
        {
            throw new VmmFault(Explain(e, type).Message);
        }

        return value ?? throw new VmmFault("The request body is null; it must be a JSON object.");
    }

    /// <summary>What a <see cref="JsonException"/> from reading <paramref name="type"/> means, for a person: the field and a sentence.</summary>
    public static (string Field, string Message) Explain(JsonException e, JsonTypeInfo type)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(type);
        string field = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : e.Path ?? "$";
        string known = string.Join(", ", type.Properties.Select(p => p.Name));
        if (e.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            // The path stops at the object holding the unknown member; the message quotes the member itself.
            int start = e.Message.IndexOf('\'', StringComparison.Ordinal);
            int end = start < 0 ? -1 : e.Message.IndexOf('\'', start + 1);
            string name = end > start ? e.Message[(start + 1)..end] : field;
            return (name, $"Unknown field '{name}' in the request body (known fields: {known}).");
        }

        if (e.Message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return (field, $"Field '{field}' has the wrong type or value.");
        }

        return (field, e.LineNumber is not null
            ? $"The request body is not valid JSON (at '{field}', line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})."
            : $"The request body is not valid JSON ({e.Message}).");
    }
}
