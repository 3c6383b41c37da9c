using System.Net;
using System.Text;
using System.Text.Json;

namespace HostVM.Vmm.Tests;

/// <summary>A real control API server on a Unix socket in a temporary directory, with a real HTTP client.</summary>
public sealed class VmmApiFixture : IAsyncDisposable
{
    private readonly ConsoleSink _serial = new(Stream.Null);
    private readonly VmmLog _log = new("test");
    private VmmServer? _server;

    private VmmApiFixture(string directory)
    {
        Directory = directory;
        Controller = new VmmController("test-vm", _serial, _log);
        Client = UnixSocketHttp.Create(Path.Combine(directory, "api.sock"));
    }

    public string Directory { get; }

    public VmmController Controller { get; }

    public HttpClient Client { get; }

    public static async Task<VmmApiFixture> StartAsync()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("hostvm-vmm-test-").FullName;
        var fixture = new VmmApiFixture(dir);
        fixture._server = await VmmServer.StartAsync(Path.Combine(dir, "api.sock"), fixture.Controller, fixture._log);
        return fixture;
    }

    /// <summary>A file of <paramref name="size"/> zero bytes in the fixture's directory.</summary>
    public string File(string name, long size = 1024 * 1024)
    {
        string path = Path.Combine(Directory, name);
        using var f = System.IO.File.Create(path);
        f.SetLength(size);
        return path;
    }

    public async Task<(HttpStatusCode Status, string Body)> SendAsync(string method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await Client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Sends a request that must be refused; returns the fault message.</summary>
    public async Task<string> FaultAsync(string method, string path, string? json = null)
    {
        var (status, body) = await SendAsync(method, path, json);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("fault_message").GetString()!;
    }

    public async Task NoContentAsync(string method, string path, string json)
    {
        var (status, body) = await SendAsync(method, path, json);
        Assert.True(status == HttpStatusCode.NoContent, $"{method} {path}: {(int)status} {body}");
    }

    public async Task<JsonElement> GetAsync(string path)
    {
        var (status, body) = await SendAsync("GET", path);
        Assert.True(status == HttpStatusCode.OK, $"GET {path}: {(int)status} {body}");
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        Controller.Dispose();
        _serial.Dispose();
        _log.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
