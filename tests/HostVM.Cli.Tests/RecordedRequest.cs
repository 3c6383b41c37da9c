using System.Text;
using System.Text.Json.Nodes;

namespace HostVM.Cli.Tests;

/// <summary>A request the CLI sent to <see cref="FakeDaemon"/> (<paramref name="Authorization"/>: its Authorization header, if any).</summary>
public sealed record RecordedRequest(string Method, string PathAndQuery, byte[] Body, string? ContentType, string? Authorization = null)
{
    public string Text => Encoding.UTF8.GetString(Body);

    public JsonNode? Json => JsonNode.Parse(Text);

    /// <summary>Asserts the JSON body equals <paramref name="expected"/>, field order and spacing aside.</summary>
    public void AssertJson(string expected)
    {
        Assert.StartsWith("application/json", ContentType);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), Json), $"expected {expected}\nsent     {Text}");
    }
}
