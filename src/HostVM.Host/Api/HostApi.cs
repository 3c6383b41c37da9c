using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Consoles;
using HostVM.Host.Images;
using HostVM.Host.Inventory;
using HostVM.Host.Metrics;
using HostVM.Host.Networks;
using HostVM.Host.Security;
using HostVM.Host.Supervision;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace HostVM.Host.Api;

/// <summary>The REST resources under /v1/ (docs/host-api.md). Handlers are thin: the supervisor, image store and network manager do the work.</summary>
public sealed class HostApi(VmSupervisor vms, ImageStore images, NetworkManager networks, Storage.VolumeManager volumes, InventoryStore inventory, HostSettings settings, StatsSampler stats, EventBroadcaster events)
{
    private ApiRoutes? _routes;

    /// <summary>The largest JSON body accepted.</summary>
    public const int MaxJsonBytes = 64 * 1024;

    /// <summary>What Kestrel lets any request carry (uploads raise it for themselves).</summary>
    public const int MaxReadBytes = 1024 * 1024;

    private static HostJsonContext Json => HostJsonContext.Default;

    /// <summary>The routes mapped so far, with what each asks of its caller (access control, audit and OpenAPI read them).</summary>
    public IReadOnlyList<ApiEndpoint> Endpoints => _routes?.Endpoints ?? [];

    public void Map(WebApplication app, AccessControl access)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(access);
        // Console WebSockets and event streams, counted and capped per token and VM, closed when their token lapses.
        var sessions = new SessionRegistry(access.Tokens, settings.MaxSessionsPerToken, settings.MaxSessionsPerVm);
        var consoles = new ConsoleHub(vms, sessions);
        app.Lifetime.ApplicationStopping.Register(consoles.Dispose);
        app.Lifetime.ApplicationStopped.Register(sessions.Dispose);
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
            catch (Exception e) when (e is not OperationCanceledException && !context.Response.HasStarted)
            {
                // A fault of the daemon's own (its inventory locked or its disk full, a bug): the caller gets a problem
                // that says what failed, and the audit log the 500 it was answered (the server's bare 500 came later).
                Console.Error.WriteLine($"hostvm serve: {context.Request.Method} {context.Request.Path}: {e}");
                await WriteProblemAsync(context, new ApiProblem(500, "internal-error", "The daemon could not complete the request",
                    $"{e.GetType().Name}: {e.Message}")).ConfigureAwait(false);
            }
            finally
            {
                access.Finish(context);
            }
        });
        app.Use((context, next) => access.InvokeAsync(context, () => next(context)));

        var routes = _routes = new ApiRoutes(app);
        routes.Get("/v1/host", Access.Read, "host.get", "The host: capacity, allocation, VMs per state, the TLS fingerprint",
            ([Microsoft.AspNetCore.Mvc.FromServices] TlsIdentity? tls) => Ok(vms.Info() with { TlsFingerprint = tls?.Fingerprint }, Json.HostInfo)).Produces<HostInfo>();
        routes.Get("/v1/host/stats", Access.Read, "host.stats", "Every VM's stats line and their totals, the host's load and memory (a project's token: its VMs)", async (HttpContext c, CancellationToken aborted) =>
            Ok(await stats.HostStatsAsync(Caller(c).Project, aborted).ConfigureAwait(false), Json.HostStats)).Produces<HostStats>();

        var exporter = new Metrics.PrometheusExporter(inventory, vms);
        routes.Get("/metrics", settings.MetricsPublic ? Access.Anyone : Access.Read, "metrics", "Prometheus text: the host and every VM (a project's token: its VMs)",
            async (HttpContext c) => Results.Text(await exporter.ScrapeAsync(Caller(c).Project).ConfigureAwait(false), Metrics.PrometheusExporter.ContentType)).Produces<string>(200, "text/plain");

        routes.Get("/v1/images", Access.Read, "image.list", "Images", (HttpContext c) => Ok(inventory.Images().Where(i => Caller(c).Sees(i.Project)).ToList(), Json.ListImageRecord)).Produces<List<ImageRecord>>();
        routes.Get("/v1/images/{name}", Access.Read, "image.get", "One image", (string name, HttpContext c) => Ok(Image(c, name), Json.ImageRecord)).Produces<ImageRecord>();
        routes.Post("/v1/images", Access.Operate, "image.import", "Import an image (JSON paths in an import directory, or from_vm: a stopped VM; or a multipart upload)", (Delegate)ImportImageAsync).Accepts<ImportImageRequest>("application/json", "multipart/form-data").Produces<ImageRecord>(201);
        routes.Delete("/v1/images/{name}", Access.Operate, "image.delete", "Delete an image", (string name, HttpContext c) =>
        {
            images.Delete(Image(c, name).Name);
            return Results.NoContent();
        }).Produces(204);

        routes.Get("/v1/vms", Access.Read, "vm.list", "VMs", (HttpContext c) => Ok(inventory.Vms().Where(v => Caller(c).Sees(v.Project)).ToList(), Json.ListVmRecord)).Produces<List<VmRecord>>();
        routes.Get("/v1/vms/{vm}", Access.Read, "vm.get", "One VM", (string vm, HttpContext c) => Ok(Vm(c, vm), Json.VmRecord)).Produces<VmRecord>();
        routes.Post("/v1/vms", Access.Operate, "vm.create", "Create a VM (and start it with start: true)", async (HttpContext c) =>
        {
            var request = await ReadAsync(c, Json.CreateVmRequest).ConfigureAwait(false);
            string project = TargetProject(c, request.Project);
            AccessControl.Touch(c, "vm", request.Name ?? string.Empty, project);
            var created = vms.Create(request with { Project = project });
            return Created(c, created, Json.VmRecord, $"/v1/vms/{created.Name}");
        }).Accepts<CreateVmRequest>("application/json").Produces<VmRecord>(201);
        routes.Patch("/v1/vms/{vm}", Access.Operate, "vm.update", "Change a VM's cap, limits, balloon or restart policy", async (string vm, HttpContext c) =>
            Ok(vms.Update(Vm(c, vm).Id, await ReadAsync(c, Json.UpdateVmRequest).ConfigureAwait(false)), Json.VmRecord)).Accepts<UpdateVmRequest>("application/json").Produces<VmRecord>();
        routes.Delete("/v1/vms/{vm}", Access.Operate, "vm.delete", "Delete a VM (force: even running; purge: its disk too); its port forwards go with it", (string vm, bool? force, bool? purge, HttpContext c) =>
        {
            string id = Vm(c, vm).Id;
            vms.Delete(id, force ?? false, purge ?? false);
            networks.RemoveForwardsOf(id);
            return Results.NoContent();
        }).Produces(204);
        routes.Post("/v1/vms/{vm}/start", Access.Operate, "vm.start", "Start a VM", (string vm, HttpContext c) => Ok(vms.StartVm(Vm(c, vm).Id), Json.VmRecord)).Produces<VmRecord>();
        routes.Post("/v1/vms/{vm}/stop", Access.Operate, "vm.stop", "Stop a VM (gracefully, or force)", async (string vm, HttpContext c) =>
            Ok(vms.Stop(Vm(c, vm).Id, await ReadOptionalAsync(c, Json.StopVmRequest).ConfigureAwait(false)), Json.VmRecord)).Accepts<StopVmRequest>("application/json").Produces<VmRecord>();
        routes.Post("/v1/vms/{vm}/restart", Access.Operate, "vm.restart", "Stop and start a VM", async (string vm, HttpContext c) =>
            Ok(vms.Restart(Vm(c, vm).Id, await ReadOptionalAsync(c, Json.StopVmRequest).ConfigureAwait(false)), Json.VmRecord)).Accepts<StopVmRequest>("application/json").Produces<VmRecord>();
        routes.Post("/v1/vms/{vm}/pause", Access.Operate, "vm.pause", "Pause a running VM", (string vm, HttpContext c) => Ok(vms.Pause(Vm(c, vm).Id), Json.VmRecord)).Produces<VmRecord>();
        routes.Post("/v1/vms/{vm}/resume", Access.Operate, "vm.resume", "Resume a paused VM", (string vm, HttpContext c) => Ok(vms.Resume(Vm(c, vm).Id), Json.VmRecord)).Produces<VmRecord>();
        routes.Get("/v1/vms/{vm}/stats", Access.Read, "vm.stats", "A VM's counters now and its rates (MIPS, CPU %, disk and NIC per second)", async (string vm, HttpContext c) =>
            Ok(await stats.VmStatsAsync(Vm(c, vm).Id, c.RequestAborted).ConfigureAwait(false), Json.VmStats)).Produces<VmStats>();
        routes.Get("/v1/vms/{vm}/stats/history", Access.Read, "vm.stats.history", "The sampler's samples of the VM over the last hour, oldest first", (string vm, string? since, HttpContext c) =>
            Ok(stats.History(Vm(c, vm).Id, StatsSampler.ParseSince(since)), Json.IReadOnlyListStatsSample)).Produces<IReadOnlyList<StatsSample>>();
        routes.Map("GET", "/v1/vms/{vm}/console", Access.Read, "vm.console", "The serial console as a WebSocket (mode=watch: read-only; mode=write: operator or admin; one writer)",
            (string vm, HttpContext c) => consoles.AttachAsync(Vm(c, vm), c, Caller(c).May(Access.Operate)), auditAlways: true);
        routes.Get("/v1/vms/{vm}/console/log", Access.Read, "vm.console-log", "The last bytes of the VM's serial log (text)",
            (string vm, string? bytes, HttpContext c) => consoles.Log(Vm(c, vm), bytes)).Produces<string>(200, "text/plain");

        routes.Get("/v1/vms/{vm}/disks/{disk}/bitmaps", Access.Read, "vm.disk.bitmaps", "A disk's dirty bitmaps (disk: its own; volN: its Nth volume)",
            (string vm, string disk, HttpContext c) => Ok(vms.Bitmaps(Vm(c, vm).Id, disk), Json.IReadOnlyListDirtyBitmap)).Produces<IReadOnlyList<Vmm.Api.DirtyBitmap>>();
        routes.Put("/v1/vms/{vm}/disks/{disk}/bitmaps", Access.Operate, "vm.disk.bitmap", "Add, remove, clear, enable, disable or merge a disk's dirty bitmap",
            async (string vm, string disk, HttpContext c) =>
            {
                var id = Vm(c, vm).Id;
                vms.ChangeBitmaps(id, disk, await ReadAsync(c, Json.BitmapRequest).ConfigureAwait(false));
                return Results.NoContent();
            }).Accepts<Vmm.Api.BitmapRequest>("application/json").Produces(204);
        routes.Get("/v1/vms/{vm}/disks/{disk}/job", Access.Read, "vm.disk.job", "The last block job on a VM's disk (snapshot, commit or stream) and its progress",
            (string vm, string disk, HttpContext c) => Ok(vms.DiskJobOf(Vm(c, vm).Id, disk), Json.DiskJobView)).Produces<DiskJobView>();
        routes.Post("/v1/vms/{vm}/disks/{disk}/job", Access.Operate, "vm.disk.job.start", "Start a block job on a VM's own disk, running or not: snapshot, commit or stream",
            async (string vm, string disk, HttpContext c) =>
            {
                var id = Vm(c, vm).Id;
                var job = vms.StartDiskJob(id, disk, await ReadAsync(c, Json.StartDiskJobRequest).ConfigureAwait(false));
                return Results.Json(job, Json.DiskJobView, statusCode: job.State == "running" ? 202 : 200);
            }).Produces<DiskJobView>(202);
        routes.Delete("/v1/vms/{vm}/disks/{disk}/job", Access.Operate, "vm.disk.job.cancel", "Cancel the running block job on a VM's disk (what it copied stays; the disk reads the same)",
            (string vm, string disk, HttpContext c) => Ok(vms.CancelDiskJob(Vm(c, vm).Id, disk), Json.DiskJobView)).Produces<DiskJobView>();
        routes.Get("/v1/vms/{vm}/disks/{disk}/bitmaps/{name}/extents", Access.Read, "vm.disk.bitmap.extents", "The ranges a dirty bitmap has set (written since it was made or cleared)",
            (string vm, string disk, string name, HttpContext c) => Ok(vms.BitmapExtents(Vm(c, vm).Id, disk, name), Json.IReadOnlyListBitmapExtent))
            .Produces<IReadOnlyList<Vmm.Api.BitmapExtent>>();

        routes.Get("/v1/networks", Access.Read, "network.list", "Networks", (HttpContext c) => Ok(networks.List().Where(n => Caller(c).Sees(n.Project)).ToList(), Json.ListNetworkView)).Produces<List<NetworkView>>();
        routes.Get("/v1/networks/{name}", Access.Read, "network.get", "One network", (string name, HttpContext c) => Ok(networks.Get(Network(c, name).Name), Json.NetworkView)).Produces<NetworkView>();
        routes.Post("/v1/networks", Access.Operate, "network.create", "Create a network (a switch, optionally with a NAT uplink)", async (HttpContext c) =>
        {
            var request = await ReadAsync(c, Json.CreateNetworkRequest).ConfigureAwait(false);
            string project = TargetProject(c, request.Project);
            AccessControl.Touch(c, "network", request.Name ?? string.Empty, project);
            var created = networks.Create(request with { Project = project });
            return Created(c, created, Json.NetworkView, $"/v1/networks/{created.Name}");
        }).Accepts<CreateNetworkRequest>("application/json").Produces<NetworkView>(201);
        routes.Put("/v1/networks/{name}/egress", Access.HostAdmin, "network.egress", "Set the destinations a NAT network's guests may reach besides the public internet (the host's admin)", async (string name, HttpContext c) =>
            Ok(networks.SetEgress(Network(c, name).Name, (await ReadAsync(c, Json.SetEgressRequest).ConfigureAwait(false)).Allow ?? []), Json.NetworkView))
            .Accepts<SetEgressRequest>("application/json").Produces<NetworkView>();
        routes.Get("/v1/networks/{name}/forwards", Access.Read, "network.forwards", "A NAT network's port forwards", (string name, HttpContext c) =>
            Ok(networks.Forwards(Network(c, name).Name).ToList(), Json.ListForwardView)).Produces<List<ForwardView>>();
        routes.Post("/v1/networks/{name}/forwards", Access.Operate, "network.forward.add", "Forward a host port into a VM of a NAT network (loopback and ports from 1024; other addresses and ports: the host's admin)", async (string name, HttpContext c) =>
        {
            string network = Network(c, name).Name;
            var request = await ReadAsync(c, Json.AddForwardRequest).ConfigureAwait(false);
            var added = networks.AddForward(network, request, Caller(c).May(Access.HostAdmin));
            return Created(c, added, Json.ForwardView, $"/v1/networks/{network}/forwards/{added.Protocol}/{added.HostPort}");
        }).Accepts<AddForwardRequest>("application/json").Produces<ForwardView>(201);
        routes.Delete("/v1/networks/{name}/forwards/{protocol}/{port}", Access.Operate, "network.forward.remove", "Close a port forward (its open connections finish)", (string name, string protocol, int port, HttpContext c) =>
        {
            networks.RemoveForward(Network(c, name).Name, protocol, port);
            return Results.NoContent();
        }).Produces(204);
        routes.Delete("/v1/networks/{name}", Access.Operate, "network.delete", "Delete a network no VM uses", (string name, HttpContext c) =>
        {
            networks.Delete(Network(c, name).Name);
            return Results.NoContent();
        }).Produces(204);

        routes.Get("/v1/events", Access.Read, "event.list", "Events, newest first", (string? vm, int? limit, HttpContext c) =>
        {
            if (limit is < 1 or > 10000)
            {
                throw ApiProblem.BadRequest($"limit {limit}: must be 1 to 10000.", "limit");
            }

            // A VM's events outlive it (no lookup); a project's token reads its project's events only.
            return Ok(inventory.Events(vm, limit ?? 100, Caller(c).Project).ToList(), Json.ListEventRecord);
        }).Produces<List<EventRecord>>();
        routes.Get("/v1/events/stream", Access.Read, "event.stream", "Events as server-sent events as they are written (Last-Event-ID or since_id resumes)",
            (Delegate)new EventStream(inventory, events, sessions, app.Lifetime.ApplicationStopping).StreamAsync).Produces<EventRecord>(200, "text/event-stream");

        new StorageApi(volumes, inventory).Map(routes);
        new AccessApi(access.Tokens, inventory, access.Audit, volumes).Map(routes);
        routes.Add(app.MapOpenApi(OpenApiDescription.Route).CacheOutput(p => p.Expire(TimeSpan.FromDays(365))), "GET", "/openapi/v1.json", Access.Anyone, "openapi", "This API's OpenAPI document");

        app.MapFallback((HttpContext c) => throw new ApiProblem(404, "not-found", "No such resource", $"{c.Request.Method} {c.Request.Path}: there is no such resource (see docs/host-api.md)."));
    }

    private static Caller Caller(HttpContext context) => AccessControl.CallerOf(context);

    /// <summary>The VM by name or id if the caller's project holds it; else 404, as if it did not exist.</summary>
    private VmRecord Vm(HttpContext context, string nameOrId) => Visible(context, inventory.Vm(nameOrId), "VM", "vm", nameOrId, v => (v.Name, v.Project));

    private ImageRecord Image(HttpContext context, string name) => Visible(context, inventory.Image(name), "image", "image", name, i => (i.Name, i.Project));

    private NetworkRecord Network(HttpContext context, string name) => Visible(context, inventory.Network(name), "network", "network", name, n => (n.Name, n.Project));

    /// <summary>An object the caller's project holds, named for the audit log; anything else is 404.</summary>
    private static T Visible<T>(HttpContext context, T? found, string what, string kind, string asked, Func<T, (string Name, string Project)> identity)
        where T : class
    {
        if (found is null || !Caller(context).Sees(identity(found).Project))
        {
            throw ApiProblem.NotFound(what, asked);
        }

        var (name, project) = identity(found);
        AccessControl.Touch(context, kind, name, project);
        return found;
    }

    /// <summary>The project a new object goes into: the one asked for, else the token's, else "default"; one the caller cannot see is 404.</summary>
    private string TargetProject(HttpContext context, string? requested) => TargetProject(context, requested, inventory);

    /// <summary>The project a new object goes into: the one asked for, else the token's, else "default"; one the caller cannot see is 404.</summary>
    public static string TargetProject(HttpContext context, string? requested, InventoryStore inventory)
    {
        ArgumentNullException.ThrowIfNull(inventory);
        var caller = Caller(context);
        string project = requested ?? caller.Project ?? ProjectRecord.Default;
        if (!caller.Sees(project) || inventory.Project(project) is null)
        {
            throw ApiProblem.NotFound("project", project);
        }

        return project;
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

        AccessControl.Explain(context, problem.Message);
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
    public static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> type)
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

        var request = await ReadAsync(context, Json.ImportImageRequest).ConfigureAwait(false);
        if (request.FromVm is not null)
        {
            var vm = Vm(context, request.FromVm);
            if (request.Project is not null && request.Project != vm.Project)
            {
                throw ApiProblem.BadRequest($"project '{request.Project}': an image made from VM '{vm.Name}' goes into its project, '{vm.Project}'.", "project");
            }

            AccessControl.Touch(context, "image", request.Name ?? string.Empty, vm.Project);
            var made = vms.MakeImage(vm.Id, request);
            return Created(context, made, Json.ImageRecord, $"/v1/images/{made.Name}");
        }

        string project = TargetProject(context, request.Project);
        AccessControl.Touch(context, "image", request.Name ?? string.Empty, project);
        var imported = images.ImportFromPaths(request with { Project = project }, Caller(context).Project);
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
                    "firmware" => ImageStore.FirmwareFile,
                    "metadata" => null,
                    _ => throw ApiProblem.BadRequest($"Unknown part '{part}' (known: metadata, kernel, initrd, disk, firmware).", part),
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

                    if (metadata is { Kernel: not null } or { Initrd: not null } or { Disk: not null } or { Firmware: not null })
                    {
                        throw ApiProblem.BadRequest("metadata: with an upload, send the files as parts, not paths.", "metadata");
                    }

                    images.RequireFree(Names.Check(metadata?.Name, "name"));
                    metadata = metadata! with { Project = TargetProject(context, metadata.Project) };
                    AccessControl.Touch(context, "image", metadata.Name!, metadata.Project);
                    continue;
                }

                await using var output = new FileStream(Path.Combine(staging, file), FileMode.CreateNew, FileAccess.Write);
                await CopyLimitedAsync(section.Body, output, settings.MaxUploadBytes, part).ConfigureAwait(false);
            }

            if (metadata is null)
            {
                throw ApiProblem.BadRequest("The upload needs a 'metadata' part with the image's name.", "metadata");
            }

            return images.Commit(staging, metadata.Name!, metadata.BootArgs, metadata.Description, metadata.Project!);
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
}
