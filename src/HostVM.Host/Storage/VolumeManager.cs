using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Supervision;
using System.Collections.Concurrent;
using System.Net;
using HostVM.Storage;
using HostVM.Storage.Nbd;
using HostVM.Storage.Qcow2;
using HostVM.Vmm;

namespace HostVM.Host.Storage;

/// <summary>
/// Pools and the volumes in them. A volume's file is named after the volume in its pool's directory, so no caller ever
/// names a host path (only the host's admin, for a pool). Every change is made on disk first (a new file under a temporary
/// name, renamed into place), then recorded in one transaction: a failure at any point leaves no half-made volume, at most
/// a temporary file that the next start sweeps.
/// </summary>
public sealed class VolumeManager : IDisposable
{
    /// <summary>The largest volume (64 TiB, as QEMU's qcow2 with 64 KiB clusters and a 32 MiB L1 table).</summary>
    public const long MaxSizeBytes = 64L << 40;

    /// <summary>The prefix of files being written (an import, a new volume): never a volume's name (those start with a letter).</summary>
    public const string PartialPrefix = ".partial-";

    private const int CopyChunk = 1 << 20;

    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, (NbdServer Server, IBlockDevice Device, VolumeServing View)> _served = new();
    private readonly ConcurrentDictionary<string, (NbdServer Server, IBlockDevice Device, string Socket)> _proxies = new();

    /// <summary>Held while volumes are checked and attached to a new VM (after the supervisor's admission lock, never before).</summary>
    public Lock Sync => _lock;

    public VolumeManager(HostSettings settings, InventoryStore inventory)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(inventory);
        _settings = settings;
        _inventory = inventory;
        DefaultDirectory = Path.Combine(settings.DataDir, "pools", PoolRecord.Default);
        OwnerOnly.CreateDirectory(DefaultDirectory);
        if (inventory.Pool(PoolRecord.Default) is null)
        {
            // Its directory is not recorded: it follows the data directory wherever that is.
            inventory.PutPool(new PoolRecord { Name = PoolRecord.Default, Driver = PoolRecord.DirDriver, Description = "volumes in the data directory", CreatedAt = DateTimeOffset.UtcNow },
                "pool default created");
        }

        foreach (var pool in inventory.Pools().Where(p => p.Driver == PoolRecord.DirDriver))
        {
            string dir = DirectoryOf(pool);
            if (Directory.Exists(dir))
            {
                foreach (string partial in Directory.GetFiles(dir, PartialPrefix + "*"))
                {
                    File.Delete(partial); // an import or create the daemon did not finish: never acknowledged
                }
            }
        }
    }

    /// <summary>The default pool's directory: DataDir/pools/default.</summary>
    public string DefaultDirectory { get; }

    public string DirectoryOf(PoolRecord pool)
    {
        ArgumentNullException.ThrowIfNull(pool);
        return pool.Path ?? DefaultDirectory;
    }

    /// <summary>Where the volume's content is: its file, or (an nbd pool's) the export's nbd:// URI.</summary>
    public string SourceOf(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var pool = _inventory.Pool(volume.Pool) ?? throw new InvalidOperationException($"volume {volume.Key}: its pool is gone");
        return pool.Driver == PoolRecord.NbdDriver ? $"nbd://{pool.Address}/{Uri.EscapeDataString(volume.Name)}" : FileOf(volume);
    }

    /// <summary>What the volume takes on the host's disks: its file's blocks (an nbd pool's take none here).</summary>
    private long Allocated(VolumeRecord volume) => _inventory.Pool(volume.Pool)?.Driver == PoolRecord.NbdDriver ? 0 : FileSpace.Allocated(FileOf(volume));

    public string FileOf(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var pool = _inventory.Pool(volume.Pool) ?? throw new InvalidOperationException($"volume {volume.Key}: its pool is gone");
        return Path.Combine(DirectoryOf(pool), volume.FileName);
    }

    // Pools

    public PoolRecord Pool(string name) => _inventory.Pool(name) ?? throw ApiProblem.NotFound("pool", name);

    /// <summary>The pool with its space; <paramref name="sees"/> says which projects' volumes the caller may count.</summary>
    public PoolView View(PoolRecord pool, Func<string, bool> sees, bool showPath)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(sees);
        var volumes = _inventory.Volumes().Where(v => v.Pool == pool.Name && sees(v.Project)).ToList();
        if (pool.Driver == PoolRecord.NbdDriver)
        {
            return new PoolView(pool.Name, pool.Driver, null, pool.Description, null, null, 0, volumes.Count, pool.CreatedAt, showPath ? pool.Address : null);
        }

        string dir = DirectoryOf(pool);
        long? capacity = null, available = null;
        try
        {
            var drive = new DriveInfo(dir);
            capacity = drive.TotalSize;
            available = drive.AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // A pool whose directory is gone (an unmounted disk) still lists, without its space.
        }

        return new PoolView(pool.Name, pool.Driver, showPath ? dir : null, pool.Description, capacity, available, volumes.Sum(Allocated), volumes.Count, pool.CreatedAt);
    }

    public PoolRecord CreatePool(CreatePoolRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string name = Names.Check(request.Name, "name");
        string driver = request.Driver ?? PoolRecord.DirDriver;
        if (driver == PoolRecord.NbdDriver)
        {
            return CreateNbdPool(name, request);
        }

        if (driver != PoolRecord.DirDriver)
        {
            throw ApiProblem.BadRequest($"driver '{driver}': must be dir or nbd.", "driver");
        }

        string path = CheckPoolPath(request.Path);
        lock (_lock)
        {
            if (_inventory.Pool(name) is not null)
            {
                throw ApiProblem.Conflict($"A pool named '{name}' exists.");
            }

            foreach (var other in _inventory.Pools().Where(p => p.Driver == PoolRecord.DirDriver))
            {
                string dir = DirectoryOf(other);
                if (Overlaps(path, dir))
                {
                    throw ApiProblem.Conflict($"path {path}: overlaps pool '{other.Name}' ({dir}); a pool's directory holds its volumes only.");
                }
            }

            OwnerOnly.CreateDirectory(path);
            var pool = new PoolRecord { Name = name, Driver = driver, Path = path, Description = request.Description ?? string.Empty, CreatedAt = DateTimeOffset.UtcNow };
            _inventory.PutPool(pool, $"pool {name} created ({driver}, {path})");
            return pool;
        }
    }

    private PoolRecord CreateNbdPool(string name, CreatePoolRequest request)
    {
        if (request.Path is not null)
        {
            throw ApiProblem.BadRequest("path: an nbd pool has an address, not a path.", "path");
        }

        string address = request.Address ?? string.Empty;
        int colon = address.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(address[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > 65535 || address[..colon].Any(c => c is '/' or '?' or '#' or '@' or ' ' || char.IsControl(c)))
        {
            throw ApiProblem.BadRequest($"address '{request.Address}': write the NBD server's HOST:PORT, e.g. 10.0.0.5:10809.", "address");
        }

        lock (_lock)
        {
            if (_inventory.Pool(name) is not null)
            {
                throw ApiProblem.Conflict($"A pool named '{name}' exists.");
            }

            var pool = new PoolRecord { Name = name, Driver = PoolRecord.NbdDriver, Address = address, Description = request.Description ?? string.Empty, CreatedAt = DateTimeOffset.UtcNow };
            _inventory.PutPool(pool, $"pool {name} created (nbd, {address})");
            return pool;
        }
    }

    /// <summary>
    /// A pool's directory: absolute and normal, no link on the way (a link could be pointed elsewhere later), and apart from
    /// the daemon's data and runtime directories (whose files a volume's name could otherwise collide with or replace).
    /// </summary>
    private string CheckPoolPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || !Path.IsPathFullyQualified(path) || Path.GetFullPath(path) != path.TrimEnd('/') || path == "/")
        {
            throw ApiProblem.BadRequest($"path '{path}': give an absolute directory path without '..', '.' or a trailing '/' (not '/').", "path");
        }

        for (string? part = path; part is not null and not "/"; part = Path.GetDirectoryName(part))
        {
            if (new FileInfo(part).LinkTarget is not null)
            {
                throw ApiProblem.BadRequest($"path {path}: {part} is a symbolic link; give the real directory.", "path");
            }
        }

        if (File.Exists(path))
        {
            throw ApiProblem.BadRequest($"path {path}: is a file, not a directory.", "path");
        }

        foreach (string daemon in new[] { _settings.DataDir, _settings.RuntimeDir })
        {
            if (Overlaps(path, Path.GetFullPath(daemon)))
            {
                throw ApiProblem.BadRequest($"path {path}: overlaps the daemon's directory {daemon}; the default pool is the one in the data directory.", "path");
            }
        }

        return path;
    }

    private static bool Overlaps(string a, string b) =>
        a == b || a.StartsWith(b.TrimEnd('/') + "/", StringComparison.Ordinal) || b.StartsWith(a.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>Deletes a pool with no volumes (its directory stays: it is the admin's); the default pool stays.</summary>
    public void DeletePool(string name)
    {
        lock (_lock)
        {
            var pool = Pool(name);
            if (pool.Name == PoolRecord.Default)
            {
                throw ApiProblem.Conflict("The default pool cannot be deleted.");
            }

            int count = _inventory.Volumes().Count(v => v.Pool == name);
            if (count > 0)
            {
                throw ApiProblem.Conflict($"Pool '{name}' has {count} volume(s): delete them first.");
            }

            _inventory.DeletePool(pool);
        }
    }

    // Volumes

    /// <summary>
    /// <c>POOL/NAME</c> (or a bare NAME in the default pool) as (pool, name), each checked as names are: a key is never a path.
    /// </summary>
    public static (string Pool, string Name) ParseKey(string? key, string field)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw ApiProblem.BadRequest($"{field} is required.", field);
        }

        int slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0
            ? (PoolRecord.Default, Names.Check(key, field))
            : (Names.Check(key[..slash], field), Names.Check(key[(slash + 1)..], field));
    }

    public VolumeView View(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var all = _inventory.Volumes();
        string? attached = _inventory.Vms().FirstOrDefault(v => v.Volumes.Contains(volume.Key))?.Name;
        return new VolumeView(volume.Pool, volume.Name, volume.Project, volume.Format, volume.SizeBytes, Allocated(volume), volume.Backing, attached,
            Overlays(volume, all), volume.CreatedAt, Serving(volume.Key));
    }

    private static List<string> Overlays(VolumeRecord volume, IReadOnlyList<VolumeRecord> all) =>
        [.. all.Where(v => v.Backing == volume.Key).Select(v => v.Key)];

    /// <summary>The volume's backing chain as its records have it (its direct base first), each file with its format.</summary>
    public List<(string Path, string Format)> ChainOf(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var chain = new List<(string, string)>();
        for (string? backing = volume.Backing; backing is not null;)
        {
            var base_ = _inventory.Volume(backing) ?? throw new ApiProblem(409, "volume-missing", "A volume's base is missing", $"volume {volume.Key}: its base {backing} is gone.");
            chain.Add((FileOf(base_), base_.Format));
            backing = base_.Backing;
        }

        return chain;
    }

    /// <summary>
    /// Opens a volume's content as its records describe it: a file's backing chain from the inventory (a VMM that had the
    /// file could have named any host file in its header), an nbd pool's export by its URI.
    /// </summary>
    public IBlockDevice OpenRecorded(VolumeRecord volume, bool readOnly)
    {
        ArgumentNullException.ThrowIfNull(volume);
        return _inventory.Pool(volume.Pool)?.Driver == PoolRecord.NbdDriver
            ? DiskImage.Open(SourceOf(volume), readOnly, "raw", volume.Name)
            : DiskImage.OpenRecorded(FileOf(volume), readOnly, volume.Format, ChainOf(volume), volume.Name);
    }

    /// <summary>The files a VMM needs for <paramref name="volume"/>: its own, then its backing chain's (read-only), from the records, never from the files.</summary>
    public VolumeFile FilesOf(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var chain = ChainOf(volume).Select(c => c.Path).ToList();

        if (_inventory.Pool(volume.Pool)?.Driver == PoolRecord.NbdDriver)
        {
            string socket = Proxy(volume);
            return new VolumeFile(volume.Key, $"nbd+unix:///{Uri.EscapeDataString(volume.Name)}?socket={socket}", "raw", [], socket);
        }

        return new VolumeFile(volume.Key, FileOf(volume), volume.Format, chain);
    }

    /// <summary>Makes sure the sockets of a running VM's nbd volumes are served (after a daemon restart, for the VMMs it adopts).</summary>
    public void ServeToVmm(IReadOnlyList<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (var volume in keys.Select(_inventory.Volume).OfType<VolumeRecord>().Where(v => _inventory.Pool(v.Pool)?.Driver == PoolRecord.NbdDriver))
        {
            Proxy(volume);
        }
    }

    /// <summary>
    /// The daemon's Unix socket that serves an nbd pool's volume to its VMM (made once, kept until the volume is deleted or
    /// the daemon stops): the daemon holds the connection to the remote server, so a jailed VMM needs no network.
    /// </summary>
    private string Proxy(VolumeRecord volume)
    {
        lock (_proxies)
        {
            if (_proxies.TryGetValue(volume.Key, out var existing))
            {
                return existing.Socket;
            }

            // A directory per volume (named by a hash: a Unix socket's path has at most 107 bytes, and names may be 63 each),
            // which a jail binds whole: a socket made anew in it (a daemon restarted) is the one its VMM then reaches.
            string dir = Path.Combine(_settings.RuntimeDir, "nbd", Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(volume.Key)))[..16]);
            OwnerOnly.CreateDirectory(dir);
            string socket = Path.Combine(dir, "nbd.sock");
            File.Delete(socket);
            IBlockDevice device;
            try
            {
                device = DiskImage.Open(SourceOf(volume), readOnly: false, "raw", volume.Name);
            }
            catch (BlockDeviceException e)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key}: its NBD server cannot be reached: {e.Message}");
            }

            try
            {
                var server = NbdServer.Start(new System.Net.Sockets.UnixDomainSocketEndPoint(socket), [new NbdExport(volume.Name, device)]);
                if (!OperatingSystem.IsWindows())
                {
                    // Anyone who reaches it may connect: its directory is what keeps others out (the VM's jail uid's, 0700).
                    File.SetUnixFileMode(socket, (UnixFileMode)0x1b6);
                }

                _proxies[volume.Key] = (server, device, socket);
                return socket;
            }
            catch
            {
                device.Dispose();
                throw;
            }
        }
    }

    private void DropProxy(string key)
    {
        if (_proxies.TryRemove(key, out var proxy))
        {
            proxy.Server.Dispose();
            proxy.Device.Dispose();
        }
    }

    public VolumeRecord CreateVolume(CreateVolumeRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_inventory.Pool(Names.Check(request.Pool ?? PoolRecord.Default, "pool")) is { Driver: PoolRecord.NbdDriver } nbdPool)
        {
            return AddExport(nbdPool, request);
        }

        var pool = DirPool(request.Pool ?? PoolRecord.Default);
        string name = Names.Check(request.Name, "name");
        string project = request.Project ?? ProjectRecord.Default;
        string format = CheckFormat(request.Format);
        VolumeRecord? backing = null;
        if (request.Backing is not null)
        {
            var (bp, bn) = ParseKey(request.Backing, "backing");
            backing = _inventory.Volume(VolumeRecord.KeyOf(bp, bn)) is { } found && found.Project == project
                ? found
                : throw ApiProblem.BadRequest($"backing '{request.Backing}': no such volume in project '{project}' (hostvm volume list).", "backing");
            if (format != "qcow2")
            {
                throw ApiProblem.BadRequest("format raw: only a qcow2 volume can have a backing volume.", "format");
            }
        }

        long size = CheckSize(request.SizeBytes ?? backing?.SizeBytes, "size_bytes");
        if (backing is not null && size < backing.SizeBytes)
        {
            throw ApiProblem.BadRequest($"size_bytes {size}: smaller than its backing volume ({backing.SizeBytes}).", "size_bytes");
        }

        var volume = new VolumeRecord { Pool = pool.Name, Name = name, Project = project, Format = format, SizeBytes = size, Backing = backing?.Key, CreatedAt = DateTimeOffset.UtcNow };
        string dir = DirectoryOf(pool);
        string partial = Path.Combine(dir, $"{PartialPrefix}{Guid.NewGuid():N}");
        try
        {
            if (format == "qcow2")
            {
                // A base in the same pool is named by its file name (the pair can move together); another pool's by its path.
                string? backingName = backing is null ? null : backing.Pool == pool.Name ? backing.FileName : FileOf(backing);
                Qcow2Image.Create(partial, size, backingName, backing?.Format, openBacking: false); // the base is what its record says
            }
            else
            {
                using var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None);
                file.SetLength(size); // sparse: allocates nothing until written
                file.Flush(flushToDisk: true);
            }

            return Commit(volume, partial, project, 0, $"volume {volume.Key} created ({format}, {size} bytes{(backing is null ? string.Empty : $", on {backing.Key}")})");
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>
    /// A volume of an nbd pool: the server's export of that name, raw, of the size the server gives (asked now: an export
    /// that is not there is refused). Nothing is made: the export is the server's.
    /// </summary>
    private VolumeRecord AddExport(PoolRecord pool, CreateVolumeRequest request)
    {
        string name = Names.Check(request.Name, "name");
        if (request.Format is not (null or "raw") || request.Backing is not null || request.SizeBytes is not null)
        {
            throw ApiProblem.BadRequest("A volume of an nbd pool is the server's export as it is: raw, of its size, without a backing volume.", "pool");
        }

        var volume = new VolumeRecord { Pool = pool.Name, Name = name, Project = request.Project ?? ProjectRecord.Default, Format = "raw", CreatedAt = DateTimeOffset.UtcNow };
        long size;
        try
        {
            using var export = DiskImage.Open(SourceOf(volume), readOnly: true, "raw");
            size = export.Length;
        }
        catch (BlockDeviceException e)
        {
            throw ApiProblem.BadRequest($"pool {pool.Name}: {e.Message}", "name");
        }

        lock (_lock)
        {
            if (_inventory.Volume(volume.Key) is not null)
            {
                throw ApiProblem.Conflict($"A volume {volume.Key} exists.");
            }

            volume = volume with { SizeBytes = size };
            _inventory.PutVolume(volume, $"volume {volume.Key} added: the export {name} of {pool.Address} ({size} bytes)");
            return volume;
        }
    }

    /// <summary>
    /// Imports <paramref name="length"/> bytes of raw disk content from <paramref name="content"/> as a new volume in
    /// <paramref name="format"/>; blocks of zeros are not written (the volume stays sparse). The volume exists only once all
    /// of it is written and synced.
    /// </summary>
    public async Task<VolumeRecord> ImportAsync(string pool, string name, string project, string? format, Stream content, long? length, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var poolRecord = DirPool(pool);
        name = Names.Check(name, "name");
        format = CheckFormat(format);
        long size = CheckSize(length is { } l ? (l + 511) / 512 * 512 : null, "Content-Length");
        var volume = new VolumeRecord { Pool = poolRecord.Name, Name = name, Project = project, Format = format, SizeBytes = size, CreatedAt = DateTimeOffset.UtcNow };
        RequireFree(volume, DirectoryOf(poolRecord));
        AdmitDisk(project, length!.Value);
        string partial = Path.Combine(DirectoryOf(poolRecord), $"{PartialPrefix}{Guid.NewGuid():N}");
        try
        {
            if (format == "qcow2")
            {
                Qcow2Image.Create(partial, size);
            }
            else
            {
                using var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write);
                file.SetLength(size);
            }

            using (var disk = DiskImage.Open(partial, readOnly: false, format))
            {
                try
                {
                    await BlockCopy.CopyAsync(content, length!.Value, disk, null, cancellationToken).ConfigureAwait(false);
                }
                catch (EndOfStreamException e)
                {
                    throw ApiProblem.BadRequest($"The upload is shorter than its Content-Length: {e.Message}; nothing was kept.", "Content-Length");
                }
            }

            if (await content.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) > 0)
            {
                throw ApiProblem.BadRequest($"The upload is longer than its Content-Length ({length}); nothing was kept.", "Content-Length");
            }

            return Commit(volume, partial, project, length.Value, $"volume {volume.Key} imported ({format}, {size} bytes)");
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>Streams the volume's content (what its guest sees, backing chain included) as raw bytes.</summary>
    public async Task ExportAsync(VolumeRecord volume, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(output);
        await using var content = new BlockDeviceStream(OpenReadOnly(volume));
        await content.CopyToAsync(output, CopyChunk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Serves a volume over NBD on <paramref name="request"/>'s address until <see cref="StopServing"/> (or the daemon stops),
    /// as export NAME: read-only unless asked. While it is served it cannot be attached to a starting VM, resized or deleted,
    /// and a running VM's volume cannot be served (the files' locks would refuse it anyway).
    /// </summary>
    public VolumeServing Serve(VolumeRecord volume, ServeVolumeRequest request)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(request);
        if (!IPEndPoint.TryParse(request.Listen ?? string.Empty, out var endpoint) || request.Listen!.IndexOf(':', StringComparison.Ordinal) < 0)
        {
            throw ApiProblem.BadRequest($"listen '{request.Listen}': write HOST:PORT, e.g. 127.0.0.1:10809 (port 0: any free one).", "listen");
        }

        bool writable = request.Writable ?? false;
        lock (_lock)
        {
            volume = _inventory.Volume(volume.Key) ?? throw ApiProblem.NotFound("volume", volume.Key);
            if (_served.ContainsKey(volume.Key))
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} is served already ({_served[volume.Key].View.Uri}); stop that first.");
            }

            if (_inventory.Vms().FirstOrDefault(v => v.Volumes.Contains(volume.Key) && VmStates.HasProcess(v.State)) is { } user)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} is attached to VM '{user.Name}', which is {user.State}: stop it first.");
            }

            if (writable && Overlays(volume, _inventory.Volumes()) is { Count: > 0 } overlays)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} is the base of {string.Join(", ", overlays)}: it can be served read-only only.");
            }

            IBlockDevice device;
            try
            {
                device = OpenRecorded(volume, readOnly: !writable);
            }
            catch (BlockDeviceException e)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} cannot be opened: {e.Message}");
            }

            NbdServer server;
            try
            {
                server = NbdServer.Start(endpoint, [new NbdExport(volume.Name, device, ReadOnly: !writable, Description: $"HostVM volume {volume.Key}")]);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                device.Dispose();
                throw ApiProblem.Conflict($"Cannot listen on {request.Listen}: {e.Message}");
            }

            var view = new VolumeServing(volume.Key, server.LocalEndPoint.ToString()!, volume.Name, server.UriFor(volume.Name), writable, 0);
            _served[volume.Key] = (server, device, view);
            _inventory.AddEvent(null, "volume", $"volume {volume.Key} served over NBD at {view.Uri}{(writable ? " (writable)" : string.Empty)}", volume.Project);
            return view;
        }
    }

    /// <summary>Where the volume is served, or null.</summary>
    public VolumeServing? Serving(string key) =>
        _served.TryGetValue(key, out var served) ? served.View with { Connections = served.Server.Connections } : null;

    /// <summary>Stops serving the volume (if it is served): its clients are disconnected and its file closed (cleanly: a qcow2's tables written).</summary>
    public void StopServing(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (!_served.TryRemove(volume.Key, out var served))
        {
            return; // not served: nothing to stop
        }

        served.Server.Dispose();
        served.Device.Dispose();
        _inventory.AddEvent(null, "volume", $"volume {volume.Key} no longer served", volume.Project);
    }

    /// <summary>409 if <paramref name="key"/> is being served (a VM must not start on it, nor may it change).</summary>
    public void RequireNotServed(string key)
    {
        if (Serving(key) is { } serving)
        {
            throw ApiProblem.Conflict($"Volume {key} is served over NBD at {serving.Uri}: stop that first (hostvm volume serve {key} --stop).");
        }
    }

    public void Dispose()
    {
        foreach (var key in _proxies.Keys)
        {
            DropProxy(key);
        }

        foreach (var key in _served.Keys)
        {
            if (_served.TryRemove(key, out var served))
            {
                served.Server.Dispose();
                served.Device.Dispose();
            }
        }
    }

    /// <summary>Opens the volume to read; one a running VMM holds is 409 (its content is changing under the reader).</summary>
    public IBlockDevice OpenReadOnly(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (_inventory.Vms().FirstOrDefault(v => v.Volumes.Contains(volume.Key) && VmStates.HasProcess(v.State)) is { } user)
        {
            throw ApiProblem.Conflict($"Volume {volume.Key} is attached to VM '{user.Name}', which is {user.State}: stop it first.");
        }

        try
        {
            return OpenRecorded(volume, readOnly: true);
        }
        catch (BlockDeviceException e)
        {
            throw ApiProblem.Conflict($"Volume {volume.Key} cannot be read: {e.Message}");
        }
    }

    /// <summary>Grows a volume that no running VM has open; shrinking is refused (it would cut off what the guest wrote).</summary>
    public VolumeRecord Resize(VolumeRecord volume, long? sizeBytes)
    {
        ArgumentNullException.ThrowIfNull(volume);
        long size = CheckSize(sizeBytes, "size_bytes");
        lock (_lock)
        {
            volume = _inventory.Volume(volume.Key) ?? throw ApiProblem.NotFound("volume", volume.Key);
            if (size < volume.SizeBytes)
            {
                throw ApiProblem.BadRequest($"size_bytes {size}: smaller than the volume ({volume.SizeBytes}); volumes only grow.", "size_bytes");
            }

            RequireNotServed(volume.Key);

            if (_inventory.Vms().FirstOrDefault(v => v.Volumes.Contains(volume.Key) && VmStates.HasProcess(v.State)) is { } user)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} is attached to VM '{user.Name}', which is {user.State}: stop it to resize the volume.");
            }

            if (_inventory.Pool(volume.Pool)?.Driver == PoolRecord.NbdDriver)
            {
                throw ApiProblem.BadRequest($"Volume {volume.Key} is an export of its NBD server: resize it there.", "size_bytes");
            }

            string file = FileOf(volume);
            if (volume.Format == "qcow2")
            {
                try
                {
                    using var disk = Qcow2BlockDevice.Open(file, readOnly: false, ChainOf(volume));
                    disk.Resize(size);
                    disk.Flush();
                }
                catch (BlockDeviceException e)
                {
                    throw ApiProblem.Conflict($"Volume {volume.Key} cannot be resized: {e.Message}");
                }
            }
            else
            {
                using var raw = new FileStream(file, FileMode.Open, FileAccess.Write);
                raw.SetLength(size);
                raw.Flush(flushToDisk: true);
            }

            var resized = volume with { SizeBytes = size };
            _inventory.PutVolume(resized, $"volume {volume.Key} resized from {volume.SizeBytes} to {size} bytes");
            return resized;
        }
    }

    /// <summary>Deletes a volume no VM has attached and no overlay uses (409 naming them): the record first, then its file.</summary>
    public void Delete(VolumeRecord volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        lock (_lock)
        {
            volume = _inventory.Volume(volume.Key) ?? throw ApiProblem.NotFound("volume", volume.Key);
            if (_inventory.Vms().FirstOrDefault(v => v.Volumes.Contains(volume.Key)) is { } user)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} is attached to VM '{user.Name}': delete the VM first.");
            }

            var overlays = Overlays(volume, _inventory.Volumes());
            if (overlays.Count > 0)
            {
                throw ApiProblem.Conflict($"Volume {volume.Key} is the base of {string.Join(", ", overlays)}: delete those first.");
            }

            RequireNotServed(volume.Key);
            DropProxy(volume.Key);
            bool nbd = _inventory.Pool(volume.Pool)?.Driver == PoolRecord.NbdDriver;
            string? file = nbd ? null : FileOf(volume);
            _inventory.DeleteVolume(volume);
            if (file is not null)
            {
                File.Delete(file); // an nbd pool's export stays: it is the server's
            }
        }
    }

    /// <summary>
    /// Checks the volumes a new VM asks for: each of its project, free (not attached elsewhere) and not a base of overlays
    /// (a guest writing there would change every overlay's view).
    /// </summary>
    public IReadOnlyList<string> CheckAttachable(IReadOnlyList<string>? keys, string project)
    {
        var result = new List<string>();
        var all = _inventory.Volumes();
        var vms = _inventory.Vms();
        foreach (string asked in keys ?? [])
        {
            var (pool, name) = ParseKey(asked, "volumes");
            string key = VolumeRecord.KeyOf(pool, name);
            var volume = all.FirstOrDefault(v => v.Key == key && v.Project == project)
                ?? throw ApiProblem.BadRequest($"volumes: no volume '{asked}' in project '{project}' (hostvm volume list).", "volumes");
            if (result.Contains(key))
            {
                throw ApiProblem.BadRequest($"volumes: {key} is named twice.", "volumes");
            }

            if (vms.FirstOrDefault(v => v.Volumes.Contains(key)) is { } user)
            {
                throw ApiProblem.Conflict($"Volume {key} is attached to VM '{user.Name}'; a volume has one VM at a time.");
            }

            var overlays = Overlays(volume, all);
            if (overlays.Count > 0)
            {
                throw ApiProblem.Conflict($"Volume {key} is the base of {string.Join(", ", overlays)}: attach an overlay on it (hostvm volume create --backing {key}).");
            }

            result.Add(key);
        }

        return result;
    }

    /// <summary>What a project's disks allocate: its volumes' files and its VMs' own disks (not their bases, the images').</summary>
    public long AllocatedBytes(string project)
    {
        long total = _inventory.Volumes().Where(v => v.Project == project).Sum(Allocated);
        foreach (var vm in _inventory.Vms().Where(v => v.Project == project && v.DiskMib > 0))
        {
            total += FileSpace.Allocated(VmPaths.For(_settings, vm.Id).DiskOf(vm));
        }

        return total;
    }

    /// <summary>409 quota-exceeded when the project's disks already allocate its max_disk_mib, or would with <paramref name="moreBytes"/>.</summary>
    public void AdmitDisk(string project, long moreBytes)
    {
        var quotas = (_inventory.Project(project) ?? throw ApiProblem.NotFound("project", project)).Quotas;
        if (quotas.MaxDiskMib is not { } max)
        {
            return;
        }

        long used = (AllocatedBytes(project) + (1 << 20) - 1) >> 20;
        long more = (moreBytes + (1 << 20) - 1) >> 20;
        if (used + more > max)
        {
            string detail = $"project '{project}' has {used} MiB of {max} MiB allocated on disk; this needs {more} MiB more.";
            throw ApiProblem.QuotaExceeded($"{detail} Raise the quota (hostvm project set) or delete volumes.", new Dictionary<string, string[]> { ["max_disk_mib"] = [detail] });
        }
    }

    private PoolRecord DirPool(string name)
    {
        var pool = _inventory.Pool(Names.Check(name, "pool")) ?? throw ApiProblem.BadRequest($"pool '{name}': no such pool (hostvm pool list).", "pool");
        return pool.Driver == PoolRecord.DirDriver ? pool : throw ApiProblem.BadRequest($"pool '{name}': a {pool.Driver} pool; volumes are made in dir pools.", "pool");
    }

    private static string CheckFormat(string? format) =>
        (format ?? "qcow2") is "qcow2" or "raw" ? format ?? "qcow2" : throw ApiProblem.BadRequest($"format '{format}': must be qcow2 or raw.", "format");

    private static long CheckSize(long? size, string field)
    {
        if (size is not { } s)
        {
            throw ApiProblem.BadRequest($"{field} is required.", field);
        }

        if (s < 512 || s > MaxSizeBytes || s % 512 != 0)
        {
            throw ApiProblem.BadRequest($"{field} {s}: a volume has 512 bytes to 64 TiB, in whole 512-byte sectors.", field);
        }

        return s;
    }

    private void RequireFree(VolumeRecord volume, string dir)
    {
        if (_inventory.Volume(volume.Key) is not null)
        {
            throw ApiProblem.Conflict($"A volume {volume.Key} exists.");
        }

        if (File.Exists(Path.Combine(dir, volume.FileName)))
        {
            throw ApiProblem.Conflict($"Pool '{volume.Pool}' has a file {volume.FileName} that is no volume of HostVM's: the host's admin must move it away first.");
        }
    }

    /// <summary>Moves a complete file (synced by its writer) into place as the volume and records it, under the lock (the name checked again there).</summary>
    private VolumeRecord Commit(VolumeRecord volume, string partial, string project, long moreBytes, string message)
    {
        lock (_lock)
        {
            string dir = Path.GetDirectoryName(partial)!;
            RequireFree(volume, dir);
            AdmitDisk(project, moreBytes);
            string target = Path.Combine(dir, volume.FileName);
            File.Move(partial, target);
            FileSync.Entries(dir);
            try
            {
                _inventory.PutVolume(volume, message);
            }
            catch
            {
                File.Delete(target);
                throw;
            }
        }

        return volume;
    }
}
