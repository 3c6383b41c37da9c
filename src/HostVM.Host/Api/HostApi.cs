using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Images;
using HostVM.Host.Inventory;
using HostVM.Host.Metrics;
using HostVM.Host.Networks;
using HostVM.Host.Supervision;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace HostVM.Host.Api;

/// <summary>The REST resources under /v1/ (docs/host-api.md). Handlers are thin: the supervisor, image store and network manager do the work.</summary>
public sealed class HostApi(VmSupervisor vms, ImageStore images, NetworkManager networks, InventoryStore inventory, HostSettings settings, StatsSampler stats, EventBroadcaster events)
{
    /// <summary>The largest JSON body accepted.</summary>
    public const int MaxJsonBytes = 64 * 1024;

    /// <summary>What Kestrel lets any request carry (uploads raise it for themselves).</summary>
    public const int MaxReadBytes = 1024 * 1024;

    private static HostJsonContext Json => HostJsonContext.Default;

    public void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context).ConfigureAwait(false);
            }
            catch (ApiProblem p)
            {
                await WriteProblemAsync(context, p).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e)
            {
                await WriteProblemAsync(context, new ApiProblem(e.StatusCode, "bad-request", "The request is not valid", e.Message)).ConfigureAwait(false);
            }
        });

        app.MapGet("/v1/host", () => Ok(vms.Info(), Json.HostInfo));
        app.MapGet("/v1/host/stats", async (CancellationToken aborted) => Ok(await stats.HostStatsAsync(aborted).ConfigureAwait(false), Json.HostStats));

        var exporter = new Metrics.PrometheusExporter(inventory, vms);
        app.MapGet("/metrics", async () => Results.Text(await exporter.ScrapeAsync().ConfigureAwait(false), Metrics.PrometheusExporter.ContentType));

        app.MapGet("/v1/images", () => Ok(inventory.Images().ToList(), Json.ListImageRecord));
        app.MapGet("/v1/images/{name}", (string name) => Ok(inventory.Image(name) ?? throw ApiProblem.NotFound("image", name), Json.ImageRecord));
        app.MapPost("/v1/images", (Delegate)ImportImageAsync);
        app.MapDelete("/v1/images/{name}", (string name) =>
        {
            images.Delete(name);
            return Results.NoContent();
        });

        app.MapGet("/v1/vms", () => Ok(inventory.Vms().ToList(), Json.ListVmRecord));
        app.MapGet("/v1/vms/{vm}", (string vm) => Ok(vms.Get(vm), Json.VmRecord));
        app.MapPost("/v1/vms", async (HttpContext c) =>
        {
            var created = vms.Create(await ReadAsync(c, Json.CreateVmRequest).ConfigureAwait(false));
            return Created(c, created, Json.VmRecord, $"/v1/vms/{created.Name}");
        });
        app.MapPatch("/v1/vms/{vm}", async (string vm, HttpContext c) => Ok(vms.Update(vm, await ReadAsync(c, Json.UpdateVmRequest).ConfigureAwait(false)), Json.VmRecord));
        app.MapDelete("/v1/vms/{vm}", (string vm, bool? force, bool? purge) =>
        {
            vms.Delete(vm, force ?? false, purge ?? false);
            return Results.NoContent();
        });
        app.MapPost("/v1/vms/{vm}/start", (string vm) => Ok(vms.StartVm(vm), Json.VmRecord));
        app.MapPost("/v1/vms/{vm}/stop", async (string vm, HttpContext c) => Ok(vms.Stop(vm, await ReadOptionalAsync(c, Json.StopVmRequest).ConfigureAwait(false)), Json.VmRecord));
        app.MapPost("/v1/vms/{vm}/restart", async (string vm, HttpContext c) => Ok(vms.Restart(vm, await ReadOptionalAsync(c, Json.StopVmRequest).ConfigureAwait(false)), Json.VmRecord));
        app.MapPost("/v1/vms/{vm}/pause", (string vm) => Ok(vms.Pause(vm), Json.VmRecord));
        app.MapPost("/v1/vms/{vm}/resume", (string vm) => Ok(vms.Resume(vm), Json.VmRecord));
        app.MapGet("/v1/vms/{vm}/stats", async (string vm, CancellationToken aborted) => Ok(await stats.VmStatsAsync(vm, aborted).ConfigureAwait(false), Json.VmStats));
        app.MapGet("/v1/vms/{vm}/stats/history", (string vm, string? since) => Ok(stats.History(vm, StatsSampler.ParseSince(since)), Json.IReadOnlyListStatsSample));
        app.MapGet("/v1/vms/{vm}/console", ConsoleAsync);

        app.MapGet("/v1/networks", () => Ok(networks.List().ToList(), Json.ListNetworkView));
        app.MapGet("/v1/networks/{name}", (string name) => Ok(networks.Get(name), Json.NetworkView));
        app.MapPost("/v1/networks", async (HttpContext c) =>
        {
            var created = networks.Create(await ReadAsync(c, Json.CreateNetworkRequest).ConfigureAwait(false));
            return Created(c, created, Json.NetworkView, $"/v1/networks/{created.Name}");
        });
        app.MapDelete("/v1/networks/{name}", (string name) =>
        {
            networks.Delete(name);
            return Results.NoContent();
        });

        app.MapGet("/v1/events", (string? vm, int? limit) =>
        {
            if (limit is < 1 or > 10000)
            {
                throw ApiProblem.BadRequest($"limit {limit}: must be 1 to 10000.", "limit");
            }

            return Ok(inventory.Events(vm, limit ?? 100).ToList(), Json.ListEventRecord);
        });

        app.MapGet("/v1/events/stream", (Delegate)new EventStream(inventory, events, app.Lifetime.ApplicationStopping).StreamAsync);

        app.MapFallback((HttpContext c) => throw new ApiProblem(404, "not-found", "No such resource", $"{c.Request.Method} {c.Request.Path}: there is no such resource (see docs/host-api.md)."));
    }

    private static IResult Ok<T>(T value, JsonTypeInfo<T> type) => Results.Json(value, type);

    private static IResult Created<T>(HttpContext context, T value, JsonTypeInfo<T> type, string location)
    {
        context.Response.Headers.Location = location;
        return Results.Json(value, type, statusCode: StatusCodes.Status201Created);
    }

    public static async Task WriteProblemAsync(HttpContext context, ApiProblem problem)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(problem);
        if (context.Response.HasStarted)
        {
            return;
        }

        var details = new Microsoft.AspNetCore.Mvc.ProblemDetails
        {
            Type = $"https://hostvm.dev/problems/{problem.Type}",
            Title = problem.Title,
            Status = problem.Status,
            Detail = problem.Message,
            Instance = context.Request.Path,
        };
        if (problem.Errors is { } errors)
        {
            details.Extensions["errors"] = errors;
        }

        context.Response.StatusCode = problem.Status;
        context.Response.ContentType = "application/problem+json";
        await JsonSerializer.SerializeAsync(context.Response.Body, details, Json.ProblemDetails).ConfigureAwait(false);
    }

    /// <summary>Reads a JSON body (at most <see cref="MaxJsonBytes"/>); every way it can be wrong is a 400 naming the field.</summary>
    private static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> type)
        where T : class => await ReadBodyAsync(context, type, required: true).ConfigureAwait(false) ?? throw ApiProblem.BadRequest("The request body is null.");

    private static async Task<T> ReadOptionalAsync<T>(HttpContext context, JsonTypeInfo<T> type)
        where T : class, new() => await ReadBodyAsync(context, type, required: false).ConfigureAwait(false) ?? new T();

    private static async Task<T?> ReadBodyAsync<T>(HttpContext context, JsonTypeInfo<T> type, bool required)
        where T : class
    {
        // The whole body is read (Kestrel caps it at MaxReadBytes) before it is judged, so the client,
        // still sending, gets the 413 rather than a reset connection.
        var request = context.Request;
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer).ConfigureAwait(false);
        if (buffer.Length > MaxJsonBytes)
        {
            throw new ApiProblem(413, "too-large", "The request body is too large", $"The body has {buffer.Length} bytes; the limit is {MaxJsonBytes}.");
        }

        if (buffer.Length == 0)
        {
            return required ? throw ApiProblem.BadRequest("The request needs a JSON body.") : null;
        }

        if (request.ContentType is { } contentType && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiProblem(415, "unsupported-media-type", "The body must be JSON", $"Content-Type {contentType}: send application/json.");
        }

        try
        {
            return JsonSerializer.Deserialize(buffer.ToArray(), type);
        }
        catch (JsonException e)
        {
            var (field, message) = Vmm.ApiJson.Explain(e, type);
            throw ApiProblem.BadRequest(message, field);
        }
    }

    /// <summary>POST /v1/images: JSON (files in an import directory) or multipart/form-data (uploaded files).</summary>
    private async Task<IResult> ImportImageAsync(HttpContext context)
    {
        if (context.Request.ContentType is { } type && type.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            var image = await UploadImageAsync(context).ConfigureAwait(false);
            return Created(context, image, Json.ImageRecord, $"/v1/images/{image.Name}");
        }

        var imported = images.ImportFromPaths(await ReadAsync(context, Json.ImportImageRequest).ConfigureAwait(false));
        return Created(context, imported, Json.ImageRecord, $"/v1/images/{imported.Name}");
    }

    private async Task<ImageRecord> UploadImageAsync(HttpContext context)
    {
        var sizeLimit = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeLimit is { IsReadOnly: false })
        {
            sizeLimit.MaxRequestBodySize = settings.MaxUploadBytes * 3;
        }

        string boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(context.Request.ContentType).Boundary).Value
            ?? throw ApiProblem.BadRequest("multipart/form-data without a boundary.");
        var reader = new MultipartReader(boundary, context.Request.Body) { HeadersLengthLimit = 16 * 1024 };
        string staging = images.BeginImport();
        try
        {
            ImportImageRequest? metadata = null;
            var seen = new HashSet<string>();
            MultipartSection? section;
            while ((section = await reader.ReadNextSectionAsync().ConfigureAwait(false)) is not null)
            {
                var disposition = section.GetContentDispositionHeader();
                string part = disposition?.Name.Value ?? throw ApiProblem.BadRequest("A multipart section without a name.");
                if (!seen.Add(part))
                {
                    throw ApiProblem.BadRequest($"The part '{part}' appears twice.", part);
                }

                string? file = part switch
                {
                    "kernel" => ImageStore.KernelFile,
                    "initrd" => ImageStore.InitrdFile,
                    "disk" => ImageStore.DiskFile,
                    "metadata" => null,
                    _ => throw ApiProblem.BadRequest($"Unknown part '{part}' (known: metadata, kernel, initrd, disk).", part),
                };
                if (file is null)
                {
                    using var text = new MemoryStream();
                    await CopyLimitedAsync(section.Body, text, MaxJsonBytes, "metadata").ConfigureAwait(false);
                    try
                    {
                        metadata = JsonSerializer.Deserialize(text.ToArray(), Json.ImportImageRequest);
                    }
                    catch (JsonException e)
                    {
                        throw ApiProblem.BadRequest($"metadata: {e.Message}", "metadata");
                    }

                    if (metadata is { Kernel: not null } or { Initrd: not null } or { Disk: not null })
                    {
                        throw ApiProblem.BadRequest("metadata: with an upload, send the files as parts, not paths.", "metadata");
                    }

                    images.RequireFree(Names.Check(metadata?.Name, "name"));
                    continue;
                }

                await using var output = new FileStream(Path.Combine(staging, file), FileMode.CreateNew, FileAccess.Write);
                await CopyLimitedAsync(section.Body, output, settings.MaxUploadBytes, part).ConfigureAwait(false);
            }

            if (metadata is null)
            {
                throw ApiProblem.BadRequest("The upload needs a 'metadata' part with the image's name.", "metadata");
            }

            return images.Commit(staging, metadata.Name!, metadata.BootArgs, metadata.Description);
        }
        catch
        {
            ImageStore.Abandon(staging);
            throw;
        }
    }

    private static async Task CopyLimitedAsync(Stream from, Stream to, long limit, string part)
    {
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = await from.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            total += n;
            if (total > limit)
            {
                throw new ApiProblem(413, "too-large", "The upload is too large", $"{part}: larger than the limit of {limit} bytes.");
            }

            await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
        }
    }

    /// <summary>GET /v1/vms/{vm}/console: a WebSocket joined to the VMM's console socket (binary frames both ways).</summary>
    private async Task ConsoleAsync(string vm, HttpContext context)
    {
        var record = vms.Get(vm);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            throw ApiProblem.BadRequest("The console is a WebSocket: connect with a WebSocket client (hostvm vm console NAME).");
        }

        if (record.State is not (VmStates.Running or VmStates.Paused))
        {
            throw ApiProblem.Conflict($"VM '{record.Name}' is {record.State}; its console exists while it runs.");
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(vms.PathsOf(record).ConsoleSocket)).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new ApiProblem(502, "vmm-unreachable", "The VM's console did not answer", $"VM '{record.Name}': {e.Message}");
        }

        using var ws = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        using var console = new NetworkStream(socket, ownsSocket: true);
        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        var toClient = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            try
            {
                int n;
                while ((n = await console.ReadAsync(buffer, done.Token).ConfigureAwait(false)) > 0)
                {
                    await ws.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, true, done.Token).ConfigureAwait(false);
                }

                // The VMM closed the console (the VM ended): say so; the client's Close answer ends the loop below.
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "the VM stopped", done.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or WebSocketException)
            {
            }
        });
        var buffer = new byte[4096];
        try
        {
            while (ws.State == WebSocketState.Open)
            {
                var result = await ws.ReceiveAsync(buffer, done.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                await console.WriteAsync(buffer.AsMemory(0, result.Count), done.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or WebSocketException)
        {
        }

        await done.CancelAsync().ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Both);
        await toClient.ConfigureAwait(false);
        if (ws.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            try
            {
                await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "detached", CancellationToken.None).ConfigureAwait(false);
            }
            catch (WebSocketException)
            {
                // The client went away without a close frame.
            }
        }
    }
}
