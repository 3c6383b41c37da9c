using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Vmm.Api;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace HostVM.Vmm;

/// <summary>
/// The per-VM control API over HTTP on a Unix socket, in the shape of Firecracker's: 204 on success,
/// 200 with JSON for reads, 400 with <c>{"fault_message": ...}</c> for anything refused, including
/// unknown paths. Requests are routed by hand (a dozen fixed paths), which keeps start-up short.
/// </summary>
public sealed class VmmServer : IAsyncDisposable
{
    /// <summary>Firecracker's limit on a request body.</summary>
    public const int MaxBodyBytes = 51200;

    private readonly KestrelServer _kestrel;
    private readonly VmmController _vmm;
    private readonly VmmLog _log;

    private VmmServer(KestrelServer kestrel, VmmController vmm, VmmLog log)
    {
        _kestrel = kestrel;
        _vmm = vmm;
        _log = log;
    }

    public string SocketPath { get; private init; } = string.Empty;

    public static async Task<VmmServer> StartAsync(string socketPath, VmmController vmm, VmmLog log)
    {
        ArgumentNullException.ThrowIfNull(socketPath);
        SerialSocket.RefuseExisting(socketPath, "--api-sock ");

        // Kestrel alone, without the generic host (configuration, DI, hosted services): the VMM's
        // start-up time is a figure we measure, and this API needs none of them.
        var loggers = NullLoggerFactory.Instance; // stdout is the guest's console; the VMM logs through VmmLog
        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            ApplicationServices = new ServiceCollection().AddSingleton<ILoggerFactory>(loggers).BuildServiceProvider(),
        };
        options.ListenUnixSocket(socketPath);
        var kestrel = new KestrelServer(Options.Create(options), new SocketTransportFactory(Options.Create(new SocketTransportOptions()), loggers), loggers);
        var server = new VmmServer(kestrel, vmm, log) { SocketPath = socketPath };
        try
        {
            await kestrel.StartAsync(new Application(server.HandleAsync), CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            kestrel.Dispose();
            throw new VmmFault($"--api-sock {socketPath}: cannot listen there ({e.Message}).");
        }

        return server;
    }

    /// <summary>Kestrel's view of the API: a plain HttpContext per request, handed to one delegate.</summary>
    private sealed class Application(RequestDelegate handle) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context) => handle(context);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        string method = request.Method;
        string path = request.Path.Value ?? "/";
        byte[] body;
        try
        {
            body = await ReadBodyAsync(request).ConfigureAwait(false);
        }
        catch (VmmFault e)
        {
            await FaultAsync(context, e.Message).ConfigureAwait(false);
            return;
        }

        try
        {
            object? result = Dispatch(method, path, body);
            if (result is null)
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                if (method != "GET")
                {
                    _log.Debug($"{method} {path}: 204");
                }

                return;
            }

            var (value, type) = ((object, JsonTypeInfo))result;
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            await JsonSerializer.SerializeAsync(context.Response.Body, value, type).ConfigureAwait(false);
        }
        catch (VmmFault e)
        {
            _log.Warning($"{method} {path}: 400 {e.Message}");
            await FaultAsync(context, e.Message).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // an API call must get an answer whatever went wrong inside
        catch (Exception e)
#pragma warning restore CA1031
        {
            _log.Error($"{method} {path}: internal error: {e}");
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            context.Response.ContentType = "application/json";
            await JsonSerializer.SerializeAsync(context.Response.Body, new ApiError($"Internal error: {e.Message}"), VmmJsonContext.Default.ApiError)
                .ConfigureAwait(false);
        }
    }

    /// <summary>Runs one request; null means 204, otherwise a (value, JSON type) pair for 200.</summary>
    private object? Dispatch(string method, string path, byte[] body)
    {
        var json = VmmJsonContext.Default;
        switch (method, path)
        {
            case ("GET", "/"):
                return Ok(_vmm.Describe(), json.InstanceInfo);
            case ("GET", "/version"):
                return Ok(new VmmVersion(VmmController.Version), json.VmmVersion);
            case ("PUT", "/boot-source"):
                _vmm.PutBootSource(ApiJson.Parse(body, json.BootSource));
                return null;
            case ("GET", "/machine-config"):
                return Ok(_vmm.GetMachineConfig(), json.MachineConfig);
            case ("PUT", "/machine-config"):
                _vmm.PutMachineConfig(ApiJson.Parse(body, json.MachineConfig));
                return null;
            case ("PATCH", "/machine-config"):
                _vmm.PatchMachineConfig(ApiJson.Parse(body, json.MachineConfig));
                return null;
            case ("PUT", "/actions"):
                _vmm.Act(ApiJson.Parse(body, json.InstanceActionInfo));
                return null;
            case ("PATCH", "/vm"):
                _vmm.SetState(ApiJson.Parse(body, json.VmState));
                return null;
            case ("GET", "/vm/config"):
                return Ok(_vmm.ExportConfiguration(), json.FullVmConfiguration);
            case ("PUT", "/metrics"):
                _vmm.PutMetrics(ApiJson.Parse(body, json.Metrics));
                return null;
            case ("PUT", "/logger"):
                _vmm.PutLogger(ApiJson.Parse(body, json.Logger));
                return null;
            case ("PUT", "/entropy"):
                _vmm.PutEntropy(ApiJson.Parse(body, json.EntropyDevice));
                return null;
            case ("PUT", "/serial"):
                _vmm.PutSerial(ApiJson.Parse(body, json.SerialDevice));
                return null;
            case ("GET", "/balloon"):
                return Ok(_vmm.GetBalloon(), json.Balloon);
            case ("PUT", "/balloon"):
                _vmm.PutBalloon(ApiJson.Parse(body, json.Balloon));
                return null;
            case ("PATCH", "/balloon"):
                _vmm.PatchBalloon(ApiJson.Parse(body, json.Balloon));
                return null;
            case ("GET", "/balloon/statistics"):
                return Ok(_vmm.GetBalloonStatistics(), json.BalloonStats);
            case ("PATCH", "/balloon/statistics"):
                _vmm.PatchBalloonStatistics(ApiJson.Parse(body, json.BalloonStatsUpdate));
                return null;
            case ("GET", "/hostvm/stats"):
                return Ok(_vmm.Statistics(), json.VmmStatistics);
        }

        // HostVM's own: /hostvm/drives/{id}/bitmaps[/{name}/extents] and /hostvm/drives/{id}/job.
        if (path.StartsWith("/hostvm/drives/", StringComparison.Ordinal))
        {
            string[] parts = path["/hostvm/drives/".Length..].Split('/');
            string id = Uri.UnescapeDataString(parts[0]);
            switch (method, parts.Length > 1 ? parts[1] : null, parts.Length)
            {
                case ("GET", "bitmaps", 2):
                    return Ok(_vmm.Bitmaps(id), json.IReadOnlyListDirtyBitmap);
                case ("PUT", "bitmaps", 2):
                    _vmm.ChangeBitmaps(id, ApiJson.Parse(body, json.BitmapRequest));
                    return null;
                case ("GET", "bitmaps", 4) when parts[3] == "extents":
                    return Ok(_vmm.BitmapExtents(id, Uri.UnescapeDataString(parts[2])), json.IReadOnlyListBitmapExtent);
                case ("GET", "job", 2):
                    return Ok(_vmm.Job(id), json.DriveJobInfo);
                case ("PUT", "job", 2):
                    return Ok(_vmm.RunJob(id, ApiJson.Parse(body, json.DriveJobRequest)), json.DriveJobInfo);
            }
        }

        if (Parameter(path, "/drives/") is { } driveId)
        {
            switch (method)
            {
                case "PUT":
                    _vmm.PutDrive(driveId, ApiJson.Parse(body, json.Drive));
                    return null;
                case "PATCH":
                    _vmm.PatchDrive(driveId, ApiJson.Parse(body, json.Drive));
                    return null;
            }
        }

        if (Parameter(path, "/network-interfaces/") is { } ifaceId)
        {
            switch (method)
            {
                case "PUT":
                    _vmm.PutNetworkInterface(ifaceId, ApiJson.Parse(body, json.NetworkInterface));
                    return null;
                case "PATCH":
                    _vmm.PatchNetworkInterface(ifaceId, ApiJson.Parse(body, json.NetworkInterface));
                    return null;
            }
        }

        throw new VmmFault(Unsupported(method, path));
    }

    private static string Unsupported(string method, string path) => path switch
    {
        "/cpu-config" => "/cpu-config: CPU templates are x86/Arm features; HostVM's RISC-V harts have none.",
        "/mmds" or "/mmds/config" => "The microVM metadata service (MMDS) is not supported by HostVM.",
        "/vsock" => "vsock is not supported by HostVM.",
        "/snapshot/create" or "/snapshot/load" => "Snapshots are not supported by HostVM yet.",
        _ when path.StartsWith("/pmem", StringComparison.Ordinal) => "pmem devices are not supported by HostVM.",
        _ when path.StartsWith("/hotplug", StringComparison.Ordinal) => "Memory hotplug is not supported by HostVM.",
        _ when path.StartsWith("/balloon/hinting", StringComparison.Ordinal) => "Free page hinting is not supported by HostVM's balloon.",
        _ => $"Invalid request method and/or path: {method} {path}.",
    };

    private static (object, JsonTypeInfo) Ok<T>(T value, JsonTypeInfo<T> type)
        where T : notnull => (value, type);

    /// <summary>The id in /drives/{id}; null if the path is not of that form.</summary>
    private static string? Parameter(string path, string prefix) =>
        path.StartsWith(prefix, StringComparison.Ordinal) && path.Length > prefix.Length && path.IndexOf('/', prefix.Length) < 0
            ? Uri.UnescapeDataString(path[prefix.Length..])
            : null;

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            throw new VmmFault($"The request body has {request.ContentLength} bytes; the limit is {MaxBodyBytes}.");
        }

        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await request.Body.ReadAsync(chunk).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes)
            {
                throw new VmmFault($"The request body is larger than the limit of {MaxBodyBytes} bytes.");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    private static async Task FaultAsync(HttpContext context, string message)
    {
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, new ApiError(message), VmmJsonContext.Default.ApiError).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _kestrel.StopAsync(CancellationToken.None).ConfigureAwait(false);
        _kestrel.Dispose();
        File.Delete(SocketPath);
    }
}
