using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Inventory;
using HostVM.Host.Security;
using HostVM.Host.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace HostVM.Host.Api;

/// <summary>
/// Pools (the host's: made and deleted by its admin) and volumes (a project's, in a pool) under /v1/pools and /v1/volumes.
/// A project's token sees its own volumes only, and the pools without their host paths.
/// </summary>
public sealed class StorageApi(VolumeManager volumes, InventoryStore inventory)
{
    private static HostJsonContext Json => HostJsonContext.Default;

    public void Map(ApiRoutes routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        routes.Get("/v1/pools", Access.Read, "pool.list", "Pools, with their space and what the caller's volumes allocate", (HttpContext c) =>
            Ok(inventory.Pools().Select(p => PoolView(c, p)).ToList(), Json.ListPoolView)).Produces<List<PoolView>>();
        routes.Get("/v1/pools/{name}", Access.Read, "pool.get", "One pool", (string name, HttpContext c) =>
            Ok(PoolView(c, volumes.Pool(name)), Json.PoolView)).Produces<PoolView>();
        routes.Post("/v1/pools", Access.HostAdmin, "pool.create", "Create a pool: a directory for volumes (the host's admin)", async (HttpContext c) =>
        {
            var request = await HostApi.ReadAsync(c, Json.CreatePoolRequest).ConfigureAwait(false);
            AccessControl.Touch(c, "pool", request.Name ?? string.Empty, null);
            var pool = volumes.CreatePool(request);
            c.Response.Headers.Location = $"/v1/pools/{pool.Name}";
            return Results.Json(PoolView(c, pool), Json.PoolView, statusCode: StatusCodes.Status201Created);
        }).Accepts<CreatePoolRequest>("application/json").Produces<PoolView>(201);
        routes.Delete("/v1/pools/{name}", Access.HostAdmin, "pool.delete", "Delete a pool with no volumes (its directory stays)", (string name, HttpContext c) =>
        {
            AccessControl.Touch(c, "pool", name, null);
            volumes.DeletePool(name);
            return Results.NoContent();
        }).Produces(204);

        routes.Get("/v1/volumes", Access.Read, "volume.list", "Volumes (of one pool with ?pool=)", (string? pool, HttpContext c) =>
            Ok(inventory.Volumes().Where(v => Caller(c).Sees(v.Project) && (pool is null || v.Pool == pool)).Select(volumes.View).ToList(), Json.ListVolumeView))
            .Produces<List<VolumeView>>();
        routes.Get("/v1/volumes/{pool}/{name}", Access.Read, "volume.get", "One volume", (string pool, string name, HttpContext c) =>
            Ok(volumes.View(Volume(c, pool, name)), Json.VolumeView)).Produces<VolumeView>();
        routes.Post("/v1/volumes", Access.Operate, "volume.create", "Create a volume (qcow2 or raw; a qcow2 overlay with backing)", async (HttpContext c) =>
        {
            var request = await HostApi.ReadAsync(c, Json.CreateVolumeRequest).ConfigureAwait(false);
            string project = TargetProject(c, request.Project);
            AccessControl.Touch(c, "volume", VolumeRecord.KeyOf(request.Pool ?? PoolRecord.Default, request.Name ?? string.Empty), project);
            var created = volumes.CreateVolume(request with { Project = project });
            return Created(c, created);
        }).Accepts<CreateVolumeRequest>("application/json").Produces<VolumeView>(201);
        routes.Patch("/v1/volumes/{pool}/{name}", Access.Operate, "volume.resize", "Grow a volume no running VM has open", async (string pool, string name, HttpContext c) =>
        {
            var volume = Volume(c, pool, name);
            var request = await HostApi.ReadAsync(c, Json.ResizeVolumeRequest).ConfigureAwait(false);
            return Ok(volumes.View(volumes.Resize(volume, request.SizeBytes)), Json.VolumeView);
        }).Accepts<ResizeVolumeRequest>("application/json").Produces<VolumeView>();
        routes.Delete("/v1/volumes/{pool}/{name}", Access.Operate, "volume.delete", "Delete a volume no VM has and no overlay uses", (string pool, string name, HttpContext c) =>
        {
            volumes.Delete(Volume(c, pool, name));
            return Results.NoContent();
        }).Produces(204);
        routes.Put("/v1/volumes/{pool}/{name}/content", Access.Operate, "volume.import", "Import a new volume from raw disk content (the body; Content-Length is its size)",
            async (string pool, string name, string? format, string? project, HttpContext c) =>
            {
                string target = TargetProject(c, project);
                AccessControl.Touch(c, "volume", VolumeRecord.KeyOf(pool, name), target);
                if (c.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
                {
                    limit.MaxRequestBodySize = VolumeManager.MaxSizeBytes;
                }

                var imported = await volumes.ImportAsync(pool, name, target, format, c.Request.Body, c.Request.ContentLength, c.RequestAborted).ConfigureAwait(false);
                return Created(c, imported);
            }).Produces<VolumeView>(201); // the body: raw bytes (no Accepts: its content-type match would turn a request without one into a 404)
        routes.Get("/v1/volumes/{pool}/{name}/content", Access.Operate, "volume.export", "A volume's content as raw bytes (what its guest sees, bases included)",
            async (string pool, string name, HttpContext c) =>
            {
                var volume = Volume(c, pool, name);
                using var check = volumes.OpenReadOnly(volume); // refused (409) before the answer starts
                check.Dispose();
                c.Response.ContentType = "application/octet-stream";
                c.Response.ContentLength = volume.SizeBytes;
                await volumes.ExportAsync(volume, c.Response.Body, c.RequestAborted).ConfigureAwait(false);
            }).Produces<Stream>(200, "application/octet-stream");
        routes.Post("/v1/volumes/{pool}/{name}/serve", Access.HostAdmin, "volume.serve", "Serve a volume over NBD (no authentication: the host's admin; read-only unless writable)",
            async (string pool, string name, HttpContext c) =>
            {
                var volume = Volume(c, pool, name);
                var serving = volumes.Serve(volume, await HostApi.ReadAsync(c, Json.ServeVolumeRequest).ConfigureAwait(false));
                c.Response.Headers.Location = $"/v1/volumes/{volume.Key}/serve";
                return Results.Json(serving, Json.VolumeServing, statusCode: StatusCodes.Status201Created);
            }).Accepts<ServeVolumeRequest>("application/json").Produces<VolumeServing>(201);
        routes.Delete("/v1/volumes/{pool}/{name}/serve", Access.HostAdmin, "volume.unserve", "Stop serving a volume over NBD (done also if it was not served)", (string pool, string name, HttpContext c) =>
        {
            volumes.StopServing(Volume(c, pool, name));
            return Results.NoContent();
        }).Produces(204);
    }

    private static Caller Caller(HttpContext context) => AccessControl.CallerOf(context);

    private PoolView PoolView(HttpContext context, PoolRecord pool)
    {
        var caller = Caller(context);
        return volumes.View(pool, caller.Sees, showPath: caller.Project is null);
    }

    /// <summary>The volume if the caller's project holds it; else 404, as if it did not exist.</summary>
    private VolumeRecord Volume(HttpContext context, string pool, string name)
    {
        string key = VolumeRecord.KeyOf(pool, name);
        if (inventory.Volume(key) is not { } volume || !Caller(context).Sees(volume.Project))
        {
            throw ApiProblem.NotFound("volume", key);
        }

        AccessControl.Touch(context, "volume", key, volume.Project);
        return volume;
    }

    private string TargetProject(HttpContext context, string? requested) => HostApi.TargetProject(context, requested, inventory);

    private IResult Created(HttpContext context, VolumeRecord volume)
    {
        context.Response.Headers.Location = $"/v1/volumes/{volume.Key}";
        return Results.Json(volumes.View(volume), Json.VolumeView, statusCode: StatusCodes.Status201Created);
    }

    private static IResult Ok<T>(T value, JsonTypeInfo<T> type) => Results.Json(value, type);
}
