using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using HostVM.Host.Api;
using HostVM.Host.Images;
using HostVM.Host.Inventory;
using HostVM.Networking;
using HostVM.Storage;
using HostVM.Storage.Qcow2;
using HostVM.Vmm;
using HostVM.Vmm.Api;

namespace HostVM.Host.Supervision;

/// <summary>
/// Runs VMs as VMM processes and keeps the inventory true to them: create, start (with admission
/// control), stop (power button, then kill), pause, resume, update while running, delete; a monitor
/// notices a VMM that died within <see cref="MonitorPeriod"/> and restarts it per the VM's policy; at
/// start-up, VMMs that outlived a previous daemon are adopted. One operation per VM at a time (another
/// is 409); every change of state is committed to the inventory before it is answered.
/// </summary>
public sealed partial class VmSupervisor : IDisposable
{
    public static readonly TimeSpan MonitorPeriod = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan ApiWait = TimeSpan.FromSeconds(60);

    /// <summary>How often a graceful stop presses the power button again.</summary>
    public const double RepressSeconds = 5;

    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly ImageStore _images;
    private readonly Storage.VolumeManager _volumes;
    private readonly VmmLauncher _launcher;
    private readonly HostResources _resources;
    private readonly Lock _admission = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _operations = new();
    private readonly ConcurrentDictionary<string, Process> _children = new();
    private readonly ConcurrentDictionary<string, List<DateTimeOffset>> _restarts = new();
    private readonly Timer _monitor;
    private readonly CancellationTokenSource _stopping = new();

    public VmSupervisor(HostSettings settings, InventoryStore inventory, ImageStore images, Storage.VolumeManager volumes)
    {
        _settings = settings;
        _inventory = inventory;
        _images = images;
        _volumes = volumes;
        _launcher = new VmmLauncher(settings);
        _resources = new HostResources(settings);
        Directory.CreateDirectory(Path.Combine(settings.DataDir, "vms"));
        SweepLeftovers();
        FinishFreezes();
        _monitor = new Timer(_ => Monitor(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public VmPaths PathsOf(VmRecord vm) => VmPaths.For(_settings, vm.Id);

    /// <summary>
    /// What a daemon that died inside a create left: a half-made <c>vms/ID.creating</c> is removed (the
    /// VM never existed), and a finished directory whose row was never written is kept in
    /// <c>orphans/unrecorded-ID</c> rather than deleted, so nothing that might matter is lost.
    /// </summary>
    private void SweepLeftovers()
    {
        string vms = Path.Combine(_settings.DataDir, "vms");
        var known = _inventory.Vms().Select(v => v.Id).ToHashSet(StringComparer.Ordinal);
        foreach (string dir in Directory.GetDirectories(vms))
        {
            string name = Path.GetFileName(dir);
            if (name.EndsWith(".creating", StringComparison.Ordinal))
            {
                Directory.Delete(dir, recursive: true);
            }
            else if (!known.Contains(name))
            {
                string orphans = Path.Combine(_settings.DataDir, "orphans");
                Directory.CreateDirectory(orphans);
                Directory.Move(dir, Path.Combine(orphans, $"unrecorded-{name}"));
            }
        }
    }

    public VmRecord Get(string nameOrId) => _inventory.Vm(nameOrId) ?? throw ApiProblem.NotFound("VM", nameOrId);

    /// <summary>Adopts VMMs that outlived the previous daemon, settles the others, and starts the monitor.</summary>
    public void Start()
    {
        foreach (var vm in _inventory.Vms().Where(v => VmStates.HasProcess(v.State)))
        {
            using var op = Operation(vm);
            if (vm.Pid is { } pid && vm.PidStartTicks is { } ticks && ProcessTable.IsAlive(pid, ticks))
            {
                if (vm.State == VmStates.Stopping)
                {
                    Kill(vm);
                    Settle(vm, VmStates.Stopped, "stopped", "stopped (the daemon restarted during a stop; the stop was finished by force)");
                    continue;
                }

                string state = vm.State;
                var waited = Stopwatch.StartNew();
                while (true)
                {
                    try
                    {
                        using var client = new VmmClient(PathsOf(vm).ApiSocket);
                        state = client.DescribeAsync().GetAwaiter().GetResult().State == "Paused" ? VmStates.Paused : VmStates.Running;
                        break;
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or IOException)
                    {
                        // A running VM that does not answer stays running (the monitor watches its process). One the last
                        // daemon left starting gets as long as a start would have had, or it would stay starting forever.
                        if (vm.State != VmStates.Starting || !ProcessTable.IsAlive(pid, ticks) || waited.Elapsed > ApiWait)
                        {
                            break;
                        }

                        Thread.Sleep(50);
                    }
                }

                if (state == VmStates.Starting)
                {
                    Kill(vm);
                    Settle(vm with { LastExit = new VmExit("failed-to-start", null, "the VMM never answered after a daemon restart", DateTimeOffset.UtcNow) },
                        VmStates.Failed, "failed", "the VMM the last daemon started never answered its API; killed");
                    continue;
                }

                _inventory.PutVm(vm with { State = state }, "adopted", $"adopted the running VMM (pid {pid}) after a daemon restart; state {state}");
                try
                {
                    _volumes.ServeToVmm(vm.Volumes);
                }
                catch (ApiProblem e)
                {
                    _inventory.AddEvent(vm.Name, "volume", $"an nbd volume is not reachable: {e.Message}");
                }
            }
            else
            {
                HandleExit(vm);
            }
        }

        // A jailed VMM the inventory does not know of (the last daemon died between starting it and writing it down,
        // or inside the create that would have recorded its VM) is found in its VM's cgroup, and ended.
        if (_launcher.Jail is { } jail)
        {
            var running = _inventory.Vms().Where(v => VmStates.HasProcess(v.State)).Select(v => v.Id).ToHashSet(StringComparer.Ordinal);
            foreach (string id in VmCgroup.VmIds(jail.CgroupScope).Where(id => !running.Contains(id)))
            {
                VmCgroup.KillMembers(jail.CgroupScope, id);
                VmCgroup.Remove(jail.CgroupScope, id);
            }
        }

        _monitor.Change(MonitorPeriod, MonitorPeriod);
    }

    public VmRecord Create(CreateVmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string name = Names.Check(request.Name, "name");
        string project = request.Project ?? ProjectRecord.Default;

        // A clone takes what the request leaves out from its source: its image, sizes, limits and networks (with new MACs).
        VmRecord? source = null;
        if (request.CloneOf is not null)
        {
            source = _inventory.Vm(Names.Check(request.CloneOf, "clone_of")) is { } s && s.Project == project
                ? s
                : throw ApiProblem.BadRequest($"clone_of '{request.CloneOf}': no such VM in project '{project}' (hostvm vm list).", "clone_of");
            if (request.Image is not null)
            {
                throw ApiProblem.BadRequest("image: a clone boots what its source boots; give image or clone_of, not both.", "image");
            }

            request = request with
            {
                Vcpus = request.Vcpus ?? source.Vcpus,
                MemoryMib = request.MemoryMib ?? source.MemoryMib,
                CpuCapPercent = request.CpuCapPercent ?? source.CpuCapPercent,
                CpuWeight = request.CpuWeight ?? source.CpuWeight,
                DiskMib = request.DiskMib ?? source.DiskMib,
                BootArgs = request.BootArgs ?? source.BootArgs,
                RestartPolicy = request.RestartPolicy ?? source.RestartPolicy,
                Networks = request.Networks ?? [.. source.Networks.Select(n => new NetworkAttachment { Network = n.Network })],
                DiskLimits = request.DiskLimits ?? source.DiskLimits,
                NicLimits = request.NicLimits ?? source.NicLimits,
                Balloon = request.Balloon ?? source.Balloon,
            };
        }

        string imageName = source?.Image ?? Names.Check(request.Image, "image");
        var image = source is not null ? null
            : _inventory.Image(imageName) is { } found && found.Project == project ? found : throw ApiProblem.BadRequest($"image '{imageName}': no such image (hostvm image list).", "image");
        int vcpus = request.Vcpus ?? 1;
        long memory = request.MemoryMib ?? 128;
        if (vcpus is < 1 or > Machine.MachineConfiguration.MaxHarts)
        {
            throw ApiProblem.BadRequest($"vcpus {vcpus}: a VM has 1 to {Machine.MachineConfiguration.MaxHarts}.", "vcpus");
        }

        if (memory is < Vmm.VmmController.MinMemoryMib or > Vmm.VmmController.MaxMemoryMib)
        {
            throw ApiProblem.BadRequest($"memory_mib {memory}: must be {Vmm.VmmController.MinMemoryMib} to {Vmm.VmmController.MaxMemoryMib}.", "memory_mib");
        }

        CheckCap(request.CpuCapPercent);
        int weight = request.CpuWeight ?? 100;
        if (weight is < 1 or > 10000)
        {
            throw ApiProblem.BadRequest($"cpu_weight {weight}: must be 1 to 10000 (100 is normal).", "cpu_weight");
        }

        string policy = request.RestartPolicy ?? RestartPolicies.OnFailure;
        if (!RestartPolicies.IsKnown(policy))
        {
            throw ApiProblem.BadRequest($"restart_policy {policy}: must be never, on-failure or always.", "restart_policy");
        }

        CheckLimits(request.DiskLimits, "disk_limits");
        CheckLimits(request.NicLimits, "nic_limits");
        var networks = new List<VmNetwork>();
        foreach (var n in request.Networks ?? [])
        {
            string network = Names.Check(n.Network, "networks.network");
            _ = _inventory.Network(network) is { } net && net.Project == project ? net : throw ApiProblem.BadRequest($"network '{network}': no such network (hostvm network list).", "networks");
            MacAddress mac;
            try
            {
                mac = n.Mac is null ? MacAddress.Random() : MacAddress.Parse(n.Mac);
            }
            catch (FormatException e)
            {
                throw ApiProblem.BadRequest($"networks.mac: {e.Message}", "networks.mac");
            }

            if (mac.IsMulticast)
            {
                throw ApiProblem.BadRequest($"networks.mac {n.Mac}: a multicast address; use a unicast one (first byte even).", "networks.mac");
            }

            if (mac == new Networking.UserNet.UserNetworkOptions().GatewayMac)
            {
                // With the NAT's own MAC the guest's frames would pass every port's check that the gateway is not claimed.
                throw ApiProblem.BadRequest($"networks.mac {n.Mac}: the NAT gateway's address; choose another.", "networks.mac");
            }

            networks.Add(new VmNetwork(network, mac.ToString()));
        }

        // A cloud-init seed: asked for, or a clone's of a source that has one (its user-data, with the clone's own instance id).
        bool seeded = CloudInit.CloudInitSeed.IsRequested(request) || source?.CloudInit is not null;
        byte[]? userData = !seeded ? null
            : CloudInit.CloudInitSeed.IsRequested(request) || source is null ? CloudInit.CloudInitSeed.UserData(request)
            : File.ReadAllBytes(PathsOf(source).SeedUserData);
        string? hostname = seeded ? CloudInit.CloudInitSeed.Hostname(request.Hostname, name) : null;

        // The VM's own disk, the entropy device and a balloon take three of the board's virtio slots; a seed one more.
        int slots = Machine.MachineConfiguration.MaxVirtioDevices - 3 - (seeded ? 1 : 0);
        if (networks.Count + (request.Volumes?.Count ?? 0) > slots)
        {
            throw ApiProblem.BadRequest($"networks and volumes: at most {slots} together{(seeded ? " with a cloud-init seed" : string.Empty)}.", request.Volumes is { Count: > 0 } ? "volumes" : "networks");
        }

        long imageDiskMib = source?.DiskMib ?? ((image!.DiskBytes ?? 0) + (1 << 20) - 1) >> 20;
        bool hasDisk = source is not null ? source.DiskMib > 0 : image!.DiskBytes is not null;
        long diskMib = request.DiskMib ?? imageDiskMib;
        if (diskMib < imageDiskMib || (diskMib > 0 && !hasDisk))
        {
            throw ApiProblem.BadRequest(!hasDisk
                ? $"disk_mib: {(source is null ? $"image '{imageName}'" : $"VM '{source.Name}'")} has no disk to grow."
                : $"disk_mib {diskMib}: smaller than the {(source is null ? "image's" : "source's")} disk ({imageDiskMib} MiB).", "disk_mib");
        }

        var vm = new VmRecord
        {
            Id = Guid.NewGuid().ToString("N"),
            Name = name,
            Image = imageName,
            Project = project,
            State = VmStates.Stopped,
            Vcpus = vcpus,
            MemoryMib = memory,
            CpuCapPercent = request.CpuCapPercent is 100 ? null : request.CpuCapPercent,
            CpuWeight = weight,
            DiskMib = diskMib,
            DiskFormat = source is not null ? (hasDisk ? "qcow2" : null) : File.Exists(_images.FileOf(imageName, ImageStore.DiskFile)) ? "qcow2" : null,
            BootArgs = request.BootArgs ?? image!.BootArgs,
            RestartPolicy = policy,
            Networks = networks,
            DiskLimits = request.DiskLimits ?? new RateLimit(),
            NicLimits = request.NicLimits ?? new RateLimit(),
            Balloon = request.Balloon ?? false,
            CreatedAt = DateTimeOffset.UtcNow,
        };
        vm = vm with { CloudInit = hostname is null ? null : new CloudInitRecord(vm.Id, hostname) };
        _resources.CheckFitsAlone(vm);

        var paths = PathsOf(vm);
        string staging = paths.Directory + ".creating";

        // The source stays stopped while it is cloned: its operation is held (before the admission lock, as a start takes them).
        using var sourceOp = source is null ? (OperationScope?)null : Operation(source);
        lock (_admission)
        {
            if (_inventory.Vm(name) is not null)
            {
                throw ApiProblem.Conflict($"A VM named '{name}' exists.");
            }

            // Under the admission lock, so two creates at once cannot both fit the last of a quota.
            var quotas = (_inventory.Project(project) ?? throw ApiProblem.NotFound("project", project)).Quotas;
            QuotaCheck.Admit(project, quotas, _inventory.Vms().Where(v => v.Project == project).ToList(), vm);
            _volumes.AdmitDisk(project, 0);

            // Under the volumes' lock too, so a volume cannot be attached twice, or deleted while it is being attached.
            using var volumesLock = _volumes.Sync.EnterScope();
            vm = vm with { Volumes = _volumes.CheckAttachable(request.Volumes, project) };

            try
            {
                Directory.CreateDirectory(staging);
                if (source is not null)
                {
                    vm = vm with { DiskLayers = CloneFiles(Get(source.Id), new VmPaths(staging, paths.RuntimeDirectory), diskMib) };
                }
                else
                {
                    _images.LinkBootFiles(image!, Path.Combine(staging, "kernel"), Path.Combine(staging, "initrd"));
                }

                if (source is null && vm.DiskFormat == "qcow2")
                {
                    // An overlay on the image's disk, linked in: a few clusters whatever the image's size, no copy.
                    var staged = new VmPaths(staging, paths.RuntimeDirectory);
                    Directory.CreateDirectory(staged.Disks);
                    FileLink.LinkOrCopy(_images.FileOf(imageName, ImageStore.DiskFile), staged.Base);
                    long baseBytes = new FileInfo(staged.Base).Length;
                    Qcow2Image.Create(staged.Overlay, Math.Max(diskMib << 20, (baseBytes + 511) / 512 * 512), VmPaths.BaseFileName, "raw");
                }

                if (vm.CloudInit is not null)
                {
                    CloudInit.CloudInitSeed.Write(new VmPaths(staging, paths.RuntimeDirectory), vm.CloudInit, userData!, vm.CreatedAt);
                }

                // Durable before the row that names them: the names (links to durable files, copies and the overlay synced
                // when made), then the rename into vms/.
                if (Directory.Exists(Path.Combine(staging, "disks")))
                {
                    FileSync.Entries(Path.Combine(staging, "disks"));
                }

                FileSync.Entries(staging);
                Directory.Move(staging, paths.Directory);
                FileSync.Entries(Path.GetDirectoryName(paths.Directory)!);
                _inventory.PutVm(vm, "created", $"created from {(source is null ? $"image {imageName}" : $"VM {source.Name} (a clone)")}: {vcpus} vCPUs, {memory} MiB, disk {diskMib} MiB");
            }
            catch
            {
                if (Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true);
                }

                if (_inventory.Vm(vm.Id) is null && Directory.Exists(paths.Directory))
                {
                    Directory.Delete(paths.Directory, recursive: true);
                }

                throw;
            }
        }

        if (request.Start == true)
        {
            try
            {
                return StartVm(name);
            }
            catch (ApiProblem)
            {
                Delete(name, force: true, purge: true); // nothing half-made: the VM that could not start is not kept
                throw;
            }
        }

        return vm;
    }

    /// <summary>
    /// Gives a clone in <paramref name="staged"/> the disk of stopped <paramref name="source"/> without copying it: the
    /// source's overlay is frozen into a layer both share (<see cref="Freeze"/>) and the clone gets its own overlay on that.
    /// The clone's boot files are the source's (linked), so it boots what its source boots even if the image is gone.
    /// Returns the clone's layers.
    /// </summary>
    private IReadOnlyList<string> CloneFiles(VmRecord source, VmPaths staged, long diskMib)
    {
        if (source.State is not (VmStates.Stopped or VmStates.Failed))
        {
            throw ApiProblem.Conflict($"VM '{source.Name}' is {source.State}: stop it to clone it.");
        }

        if (source.Volumes.Count > 0)
        {
            throw ApiProblem.Conflict($"VM '{source.Name}' has volumes attached ({string.Join(", ", source.Volumes)}): a clone takes the VM's own disk only; clone a VM without volumes.");
        }

        if (source.DiskMib > 0 && source.DiskFormat != "qcow2")
        {
            throw ApiProblem.Conflict($"VM '{source.Name}' has a raw disk (made before overlays): it cannot be cloned without a copy; make an image of it (hostvm image create --from-vm) and VMs from that.");
        }

        var from = PathsOf(source);
        RequireOwnFiles(source, from);
        FileLink.LinkOrCopy(from.Kernel, staged.Kernel);
        if (File.Exists(from.Initrd))
        {
            FileLink.LinkOrCopy(from.Initrd, staged.Initrd);
        }

        if (File.Exists(from.Firmware))
        {
            FileLink.LinkOrCopy(from.Firmware, staged.Firmware);
        }

        if (source.DiskMib <= 0)
        {
            return [];
        }

        // Each clone of a VM whose disk has not changed since the last one shares that one's layer: a chain that stays as
        // short as the source's history, not one that grows by a layer per clone.
        var frozen = source.DiskLayers.Count > 0 && !Qcow2Image.HoldsData(from.Overlay) ? source
            : source.DiskLayers.Count >= MaxDiskLayers
                ? throw ApiProblem.Conflict($"VM '{source.Name}' has {source.DiskLayers.Count} layers, the most it may, and its disk changed since the last: commit or stream some first (hostvm vm disk commit|stream).")
                : Freeze(source, running: false);
        var layers = frozen.DiskLayers;
        Directory.CreateDirectory(staged.Disks);
        if (!frozen.DiskStandalone)
        {
            FileLink.LinkOrCopy(from.Base, staged.Base);
        }

        foreach (string layer in layers)
        {
            FileLink.LinkOrCopy(from.Layer(layer), staged.Layer(layer));
        }

        Qcow2Image.Create(staged.Overlay, Math.Max(diskMib << 20, VirtualSize(staged.Layer(layers[^1]))), layers[^1], "qcow2", openBacking: false);
        return layers;
    }

    /// <summary>
    /// Freezes a VM's overlay: it becomes a read-only layer (a new name for the same file) and the VM gets a new, empty
    /// overlay on it, which takes the dirty bitmaps along (a running VM's VMM carries them itself when it reopens the disk).
    /// Crash-safe in this order: the layer's name (a hard link) and the new overlay (disk.next.qcow2) are made; the record
    /// names the layer; the new overlay is renamed over the old name. A daemon that dies in between finishes or undoes it
    /// at its next start (<see cref="FinishFreezes"/>) before any VM runs.
    /// </summary>
    private VmRecord Freeze(VmRecord vm, bool running)
    {
        var paths = PathsOf(vm);
        string layer = $"layer-{Guid.NewGuid():N}.qcow2";
        long size = VirtualSize(paths.Overlay);
        FileLink.LinkOrCopy(paths.Overlay, paths.Layer(layer));
        try
        {
            Qcow2Image.Create(paths.NextOverlay, size, layer, "qcow2", openBacking: false);
            if (!running && Qcow2Header.ReadFile(paths.Overlay).HasBitmaps)
            {
                using var frozen = Qcow2BlockDevice.Open(paths.Layer(layer), readOnly: true, ChainOf(vm));
                using var next = Qcow2BlockDevice.OpenOver(paths.NextOverlay, frozen);
                try
                {
                    next.CopyBitmapsFrom(frozen);
                }
                finally
                {
                    next.DetachBacking(); // the layer is closed by its own using
                }
            }
        }
        catch
        {
            // Nothing names them yet: the VM keeps its overlay as it was.
            File.Delete(paths.NextOverlay);
            File.Delete(paths.Layer(layer));
            throw;
        }

        FileSync.Entries(paths.Disks);
        vm = vm with { DiskLayers = [.. vm.DiskLayers, layer] };
        _inventory.PutVm(vm, "frozen", $"its disk so far is now the read-only layer {layer}; a new overlay takes its writes");
        File.Move(paths.NextOverlay, paths.Overlay, overwrite: true);
        FileSync.Entries(paths.Disks);
        return vm;
    }

    /// <summary>The size a qcow2 file's guest sees, from its header alone (its backing names are not followed: a VMM wrote it).</summary>
    private static long VirtualSize(string path) => Qcow2Header.ReadFile(path).Size;

    /// <summary>
    /// The backing chain of a VM's own qcow2 disk as its record has it: its layers from the top, then its base (raw, the
    /// image's disk). Never what the overlay's header names: its VMM had the file.
    /// </summary>
    private List<(string Path, string Format)> ChainOf(VmRecord vm)
    {
        var paths = PathsOf(vm);
        return vm.DiskFormat != "qcow2" || vm.DiskStandalone ? [] : [.. vm.DiskLayers.Reverse().Select(l => (paths.Layer(l), "qcow2")), (paths.Base, "raw")];
    }

    /// <summary>
    /// Puts each qcow2 VM's disk files in order before any VM runs:
    /// <list type="bullet">
    /// <item>a VM made before the chain had a directory of its own gets one (its files keep their relative names);</item>
    /// <item>what a daemon that died in <see cref="Freeze"/> or a commit's switch (<see cref="SwitchToLayer"/>) left: a new
    /// overlay on the layer the record names last (or on the base when it names none) is put in place, any other dropped,
    /// with layer files no record names;</item>
    /// <item>an overlay whose header names no backing file while the record has a chain finished a stream the daemon did not
    /// see to its end: recorded as standalone, its base and layers go.</item>
    /// </list>
    /// </summary>
    private void FinishFreezes()
    {
        foreach (var record in _inventory.Vms().Where(v => v.DiskFormat == "qcow2"))
        {
            var vm = record;
            var paths = PathsOf(vm);
            if (!Directory.Exists(paths.Directory))
            {
                continue;
            }

            MoveIntoDisks(paths);
            if (File.Exists(paths.NextOverlay))
            {
                string? backing = BackingNamed(paths.NextOverlay);
                string? expected = vm.DiskLayers.Count > 0 ? vm.DiskLayers[^1] : vm.DiskStandalone ? null : VmPaths.BaseFileName;
                if (backing is not null && backing == expected)
                {
                    File.Move(paths.NextOverlay, paths.Overlay, overwrite: true);
                }
                else
                {
                    File.Delete(paths.NextOverlay);
                }

                FileSync.Entries(paths.Disks);
            }

            if (!vm.DiskStandalone && File.Exists(paths.Overlay) && BackingNamed(paths.Overlay) is null)
            {
                vm = vm with { DiskLayers = [], DiskStandalone = true };
                _inventory.PutVm(vm, "disk-streamed", "its disk's stream had finished: the overlay stands alone; its base and layers are removed");
                File.Delete(paths.Base);
            }

            foreach (string file in Directory.GetFiles(paths.Disks, "layer-*.qcow2").Where(f => !vm.DiskLayers.Contains(Path.GetFileName(f))))
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>The backing file a qcow2 header names (null for none); only the header is read, nothing it names opened.</summary>
    private static string? BackingNamed(string path) => Qcow2Header.ReadFile(path).BackingFile;

    /// <summary>Moves the chain of a VM made before <see cref="VmPaths.Disks"/> into it (a rename each; a restart finishes a half-done move).</summary>
    private static void MoveIntoDisks(VmPaths paths)
    {
        var old = Directory.GetFiles(paths.Directory, "layer-*.qcow2").Select(Path.GetFileName)
            .Concat(["disk.qcow2", "disk.next.qcow2", VmPaths.BaseFileName])
            .Where(f => File.Exists(Path.Combine(paths.Directory, f!)))
            .ToList();
        if (old.Count == 0)
        {
            return;
        }

        Directory.CreateDirectory(paths.Disks);
        foreach (string? file in old)
        {
            File.Move(Path.Combine(paths.Directory, file!), Path.Combine(paths.Disks, file!), overwrite: true);
        }

        FileSync.Entries(paths.Disks);
        FileSync.Entries(paths.Directory);
    }

    /// <summary>
    /// Makes an image of a stopped VM: its boot files (linked) and its disk as the guest sees it, flattened into a sparse
    /// raw file (a copy of what it holds, not of its size), so VMs made from the image get overlays on it like any other.
    /// </summary>
    public ImageRecord MakeImage(string vmId, ImportImageRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string name = Names.Check(request.Name, "name");
        _images.RequireFree(name);
        var vm = Get(vmId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        if (vm.State is not (VmStates.Stopped or VmStates.Failed))
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}' is {vm.State}: stop it to make an image of it.");
        }

        var paths = PathsOf(vm);
        RequireOwnFiles(vm, paths);
        string staging = _images.BeginImport();
        try
        {
            FileLink.LinkOrCopy(paths.Kernel, Path.Combine(staging, ImageStore.KernelFile));
            if (File.Exists(paths.Initrd))
            {
                FileLink.LinkOrCopy(paths.Initrd, Path.Combine(staging, ImageStore.InitrdFile));
            }

            if (File.Exists(paths.Firmware))
            {
                FileLink.LinkOrCopy(paths.Firmware, Path.Combine(staging, ImageStore.FirmwareFile));
            }

            if (vm.DiskMib > 0)
            {
                string disk = Path.Combine(staging, ImageStore.DiskFile);
                using var content = new BlockDeviceStream(DiskImage.OpenRecorded(paths.DiskOf(vm), readOnly: true, vm.DiskFormat ?? "raw", ChainOf(vm)));
                using (var raw = new FileStream(disk, FileMode.CreateNew, FileAccess.Write))
                {
                    raw.SetLength(content.Length);
                }

                using var target = DiskImage.Open(disk, readOnly: false, "raw");
                BlockCopy.CopyAsync(content, content.Length, target, null, CancellationToken.None).GetAwaiter().GetResult();
            }

            return _images.Commit(staging, name, request.BootArgs ?? vm.BootArgs, request.Description ?? $"made from VM {vm.Name}", vm.Project);
        }
        catch (BlockDeviceException e)
        {
            ImageStore.Abandon(staging);
            throw ApiProblem.Conflict($"VM '{vm.Name}': its disk cannot be read: {e.Message}");
        }
        catch
        {
            ImageStore.Abandon(staging);
            throw;
        }
    }

    public VmRecord StartVm(string nameOrId)
    {
        var vm = Get(nameOrId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        if (vm.State is not (VmStates.Stopped or VmStates.Failed))
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}' is {vm.State}; only a stopped or failed VM can be started.");
        }

        _restarts.TryRemove(vm.Id, out _);
        return Launch(vm with { Restarts = 0 }, "started", "started");
    }

    /// <summary>Admits, launches and waits for the VMM's API; the VM is running when this returns.</summary>
    private VmRecord Launch(VmRecord vm, string eventType, string what)
    {
        var paths = PathsOf(vm);
        RequireOwnFiles(vm, paths);
        Process process;
        int pid;
        long ticks;
        lock (_admission)
        {
            var all = _inventory.Vms();
            _resources.Admit(vm, all);

            // A VMM the inventory does not know of (a daemon killed between starting it and writing it down) must not
            // run beside the new one on the same disk; a jailed one is found in the VM's cgroup.
            if (_launcher.Jail is { } jail)
            {
                VmCgroup.KillMembers(jail.CgroupScope, vm.Id);
            }

            vm = vm with { JailId = _launcher.Jail?.Allocate(all.Where(v => v.Id != vm.Id && VmStates.HasProcess(v.State)).Select(v => v.JailId)) };
            (process, pid, ticks) = _launcher.Launch(vm, paths, [.. vm.Volumes.Select(VolumeFile)]);
            vm = vm with { State = VmStates.Starting, Pid = pid, PidStartTicks = ticks, StartedAt = DateTimeOffset.UtcNow };
            try
            {
                _inventory.PutVm(vm, "starting", vm.JailId is { } uid ? $"VMM started (pid {pid}, jailed as uid {uid})" : $"VMM started (pid {pid})");
            }
            catch
            {
                // Not written down (a full disk, a locked inventory), the VMM must not run on: nothing would stop it, and
                // the next start would put a second VMM on the same disk. The VM stays as the inventory has it.
                Kill(vm);
                process.Dispose();
                throw;
            }
        }

        if (_children.TryRemove(vm.Id, out var old))
        {
            old.Dispose();
        }

        _children[vm.Id] = process;
        var watch = Stopwatch.StartNew();
        while (!ApiAnswers(paths.ApiSocket))
        {
            if (!ProcessTable.IsAlive(pid, ticks) || watch.Elapsed > ApiWait)
            {
                Kill(vm);
                string log = Tail(paths.VmmLog);
                var exit = new VmExit("failed-to-start", SafeExitCode(process), $"the VMM did not come up: {log}", DateTimeOffset.UtcNow);
                Settle(vm with { LastExit = exit }, VmStates.Failed, "failed", $"the VMM did not come up: {log}");
                throw new ApiProblem(500, "vmm-failed", "The VMM did not start", $"VM '{vm.Name}': the VMM did not come up: {log}");
            }

            Thread.Sleep(10);
        }

        vm = vm with { State = VmStates.Running };
        _inventory.PutVm(vm, eventType, $"{what} (pid {pid}, {watch.ElapsedMilliseconds} ms to API-ready)");
        return vm;
    }

    /// <summary>The files of an attached volume; one whose record is gone keeps the VM from starting (409), never boots it without that disk.</summary>
    private Storage.VolumeFile VolumeFile(string key)
    {
        var volume = _inventory.Volume(key) ?? throw new ApiProblem(409, "vm-files-missing", "The VM's files are missing", $"volume {key} is attached but no longer exists.");
        _volumes.RequireNotServed(key);
        return _volumes.FilesOf(volume);
    }

    /// <summary>
    /// A VM boots only the kernel and initrd linked into its own directory at create, and starts only
    /// with the disk it was made with. A VM made before VMs kept their own boot files gets them now,
    /// but only from an image of its own project that is older than the VM: an image imported since
    /// under the same name is someone else's.
    /// </summary>
    private void RequireOwnFiles(VmRecord vm, VmPaths paths)
    {
        if (!File.Exists(paths.Kernel))
        {
            if (_inventory.Image(vm.Image) is { } image && image.Project == vm.Project && image.CreatedAt <= vm.CreatedAt)
            {
                File.Delete(paths.Initrd);
                File.Delete(paths.Firmware);
                _images.LinkBootFiles(image, paths.Kernel, paths.Initrd);
            }
            else
            {
                throw new ApiProblem(409, "vm-files-missing", "The VM's files are missing",
                    $"VM '{vm.Name}' has no kernel of its own ({paths.Kernel}) and its image '{vm.Image}' is gone or was replaced: delete the VM and create it again from an image.");
            }
        }

        foreach (string file in vm.DiskMib <= 0 ? [] : vm.DiskFormat == "qcow2" ? [paths.Overlay, .. ChainOf(vm).Select(c => c.Path)] : new[] { paths.Disk })
        {
            if (!File.Exists(file))
            {
                throw new ApiProblem(409, "vm-files-missing", "The VM's files are missing",
                    $"VM '{vm.Name}' has a {vm.DiskMib} MiB disk, but {file} is missing: put the disk back (from a backup) or delete the VM; it will not start without it.");
            }
        }
    }

    private static int? SafeExitCode(Process p)
    {
        try
        {
            return p.HasExited ? p.ExitCode : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static bool ApiAnswers(string socket)
    {
        if (!File.Exists(socket))
        {
            return false;
        }

        using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            probe.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public VmRecord Stop(string nameOrId, StopVmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var vm = Get(nameOrId);
        using var op = Operation(vm);
        return StopLocked(Get(vm.Id), request);
    }

    private VmRecord StopLocked(VmRecord vm, StopVmRequest request)
    {
        if (!VmStates.HasProcess(vm.State))
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}' is {vm.State}; it is not running.");
        }

        int timeout = request.TimeoutS ?? _settings.StopTimeoutS;
        if (timeout is < 0 or > 3600)
        {
            throw ApiProblem.BadRequest($"timeout_s {timeout}: must be 0 to 3600.", "timeout_s");
        }

        bool force = request.Force ?? false;
        vm = vm with { State = VmStates.Stopping };
        _inventory.PutVm(vm, "stopping", force ? "stopping by force" : $"asking the guest to power off (power button), {timeout} s before force");
        string how = "killed";
        if (!force)
        {
            try
            {
                using var client = new VmmClient(PathsOf(vm).ApiSocket);
                client.SetStateAsync("Resumed").GetAwaiter().GetResult(); // a paused guest cannot hear the button
                var deadline = Stopwatch.StartNew();
                bool gone = false;
                while (!gone && deadline.Elapsed.TotalSeconds < timeout)
                {
                    // Pressed again every few seconds: a press while the guest boots, before acpid listens, is lost.
                    client.PressPowerButtonAsync().GetAwaiter().GetResult();
                    gone = WaitForExit(vm, TimeSpan.FromSeconds(Math.Min(RepressSeconds, timeout - deadline.Elapsed.TotalSeconds)));
                }

                how = gone ? "the guest powered off" : $"the guest did not power off within {timeout} s; killed";
            }
            catch (Exception e) when (e is VmmRequestException or HttpRequestException or TaskCanceledException or IOException)
            {
                how = WaitForExit(vm, TimeSpan.Zero) ? "the guest powered off" : $"the power button could not be pressed ({e.Message}); killed";
            }
        }

        Kill(vm);
        var exit = ReadExit(vm) ?? new VmExit("killed", null, how, DateTimeOffset.UtcNow);
        return Settle(vm with { LastExit = exit }, VmStates.Stopped, "stopped", how);
    }

    /// <summary>SIGTERM (the VMM stops its machine and exits), then SIGKILL if it has not gone within 3 s.</summary>
    private void Kill(VmRecord vm)
    {
        if (vm.Pid is not { } pid || vm.PidStartTicks is not { } ticks || !ProcessTable.IsAlive(pid, ticks))
        {
            return;
        }

        ProcessTable.Signal(pid, ProcessTable.SigTerm);
        if (!WaitForExit(vm, TimeSpan.FromSeconds(3)))
        {
            ProcessTable.Signal(pid, ProcessTable.SigKill);
            WaitForExit(vm, TimeSpan.FromSeconds(5));
        }
    }

    private static bool WaitForExit(VmRecord vm, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (vm.Pid is { } pid && vm.PidStartTicks is { } ticks && ProcessTable.IsAlive(pid, ticks))
        {
            if (watch.Elapsed > timeout)
            {
                return false;
            }

            Thread.Sleep(20);
        }

        return true;
    }

    /// <summary>Records a VM without a process in <paramref name="state"/> and cleans its sockets.</summary>
    private VmRecord Settle(VmRecord vm, string state, string eventType, string message)
    {
        var paths = PathsOf(vm);
        foreach (var socket in new[] { paths.ApiSocket, paths.ConsoleSocket })
        {
            File.Delete(socket);
        }

        if (_children.TryRemove(vm.Id, out var process))
        {
            process.Dispose();
        }

        if (vm.JailId is not null)
        {
            if (_launcher.Jail is { } jail)
            {
                jail.Remove(vm.Id);
                VmCgroup.Remove(jail.CgroupScope, vm.Id);
            }
        }

        vm = vm with { State = state, Pid = null, PidStartTicks = null, JailId = null };
        _inventory.PutVm(vm, eventType, message);
        return vm;
    }

    public VmRecord Restart(string nameOrId, StopVmRequest request)
    {
        var vm = Get(nameOrId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        if (VmStates.HasProcess(vm.State))
        {
            vm = StopLocked(vm, request);
        }

        return Launch(vm with { Restarts = 0 }, "started", "restarted by request");
    }

    public VmRecord Pause(string nameOrId) => SetRunState(nameOrId, VmStates.Running, VmStates.Paused, "Paused", "paused");

    public VmRecord Resume(string nameOrId) => SetRunState(nameOrId, VmStates.Paused, VmStates.Running, "Resumed", "resumed");

    private VmRecord SetRunState(string nameOrId, string from, string to, string vmmState, string eventType)
    {
        var vm = Get(nameOrId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        if (vm.State != from)
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}' is {vm.State}; it must be {from} to be {eventType}.");
        }

        CallVmm(vm, c => c.SetStateAsync(vmmState));
        vm = vm with { State = to };
        _inventory.PutVm(vm, eventType, eventType);
        return vm;
    }

    public VmRecord Update(string nameOrId, UpdateVmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var vm = Get(nameOrId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        CheckCap(request.CpuCapPercent);
        CheckLimits(request.DiskLimits, "disk_limits");
        CheckLimits(request.NicLimits, "nic_limits");
        if (request.RestartPolicy is { } policy && !RestartPolicies.IsKnown(policy))
        {
            throw ApiProblem.BadRequest($"restart_policy {policy}: must be never, on-failure or always.", "restart_policy");
        }

        if (request.BalloonMib is { } balloon && (!vm.Balloon || balloon < 0 || balloon > vm.MemoryMib))
        {
            throw ApiProblem.BadRequest(vm.Balloon
                ? $"balloon_mib {balloon}: must be 0 to the VM's memory ({vm.MemoryMib} MiB)."
                : $"VM '{vm.Name}' has no balloon (create it with \"balloon\": true).", "balloon_mib");
        }

        var updated = vm with
        {
            CpuCapPercent = request.CpuCapPercent is { } cap ? (cap == 100 ? null : cap) : vm.CpuCapPercent,
            DiskLimits = request.DiskLimits ?? vm.DiskLimits,
            NicLimits = request.NicLimits ?? vm.NicLimits,
            BalloonMib = request.BalloonMib ?? vm.BalloonMib,
            RestartPolicy = request.RestartPolicy ?? vm.RestartPolicy,
        };
        if (vm.State is VmStates.Running or VmStates.Paused)
        {
            CallVmm(vm, async c =>
            {
                if (request.CpuCapPercent is { } cap)
                {
                    await c.SetCpuCapAsync(cap).ConfigureAwait(false);
                    if (vm.JailId is not null && _launcher.Jail is { } jail)
                    {
                        VmCgroup.SetQuota(jail.CgroupScope, vm.Id, VmCgroup.QuotaMicroseconds(vm.Vcpus, updated.CpuCapPercent));
                    }
                }

                if (request.DiskLimits is { } disk && File.Exists(PathsOf(vm).DiskOf(vm)))
                {
                    await c.PatchDriveAsync(new Drive { DriveId = VmmLauncher.DiskId, RateLimiter = FullLimiter(disk) }).ConfigureAwait(false);
                }

                if (request.NicLimits is { } nic)
                {
                    for (int i = 0; i < vm.Networks.Count; i++)
                    {
                        await c.PatchNetworkInterfaceAsync(new NetworkInterface
                        {
                            IfaceId = VmmLauncher.InterfaceId(i),
                            RxRateLimiter = FullLimiter(nic),
                            TxRateLimiter = FullLimiter(nic),
                        }).ConfigureAwait(false);
                    }
                }

                if (request.BalloonMib is { } mib)
                {
                    await c.SetBalloonAsync(mib).ConfigureAwait(false);
                }
            });
        }

        _inventory.PutVm(updated, "updated", "settings changed" + (VmStates.HasProcess(vm.State) ? " (applied to the running VM)" : string.Empty));
        return updated;
    }

    /// <summary>A limiter that also clears what is unlimited (a bucket of size 0 removes a limit).</summary>
    private static Vmm.Api.RateLimiter FullLimiter(RateLimit limit) => new()
    {
        Bandwidth = new TokenBucket { Size = limit.BandwidthBytesPerS ?? 0, RefillTime = 1000 },
        Ops = new TokenBucket { Size = limit.OpsPerS ?? 0, RefillTime = 1000 },
    };

    public void Delete(string nameOrId, bool force, bool purge)
    {
        var vm = Get(nameOrId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        if (VmStates.HasProcess(vm.State))
        {
            if (!force)
            {
                throw ApiProblem.Conflict($"VM '{vm.Name}' is {vm.State}; stop it first, or delete with force=true.");
            }

            Kill(vm);
            vm = Settle(vm, VmStates.Stopped, "stopped", "killed to be deleted");
        }

        var paths = PathsOf(vm);
        string message = "deleted";
        if (Directory.Exists(paths.Directory))
        {
            if (purge)
            {
                Directory.Delete(paths.Directory, recursive: true);
                message = "deleted with its disk";
            }
            else
            {
                string orphans = Path.Combine(_settings.DataDir, "orphans");
                Directory.CreateDirectory(orphans);
                string kept = Path.Combine(orphans, $"{vm.Name}-{vm.Id}");
                Directory.Move(paths.Directory, kept);
                message = $"deleted; its disk and logs are kept in {kept}";
            }
        }

        if (Directory.Exists(paths.RuntimeDirectory))
        {
            Directory.Delete(paths.RuntimeDirectory, recursive: true);
        }

        _inventory.DeleteVm(vm, message);
        _operations.TryRemove(vm.Id, out _);
    }

    /// <summary>The dirty bitmaps of one of a VM's disks (<c>disk</c>, or <c>volN</c> for its Nth volume): from its VMM while it runs, else from the file.</summary>
    public IReadOnlyList<DirtyBitmap> Bitmaps(string vmId, string disk) =>
        OnDisk(vmId, disk, readOnly: true, (client, id) => client.BitmapsAsync(id), DirtyBitmaps.List);

    public void ChangeBitmaps(string vmId, string disk, BitmapRequest request) =>
        OnDisk(vmId, disk, readOnly: false, async (client, id) =>
        {
            await client.ChangeBitmapsAsync(id, request).ConfigureAwait(false);
            return 0;
        }, qcow2 =>
        {
            DirtyBitmaps.Apply(qcow2, request);
            return 0;
        });

    public IReadOnlyList<BitmapExtent> BitmapExtents(string vmId, string disk, string name) =>
        OnDisk(vmId, disk, readOnly: true, (client, id) => client.BitmapExtentsAsync(id, name), qcow2 => DirtyBitmaps.Extents(qcow2, name));

    /// <summary>
    /// Runs a bitmap call on a VM's disk under the VM's operation (so it does not start or stop meanwhile): through its VMM
    /// when it has one, else on the qcow2 file opened here (closed cleanly after, which stores the bitmaps).
    /// </summary>
    private T OnDisk<T>(string vmId, string disk, bool readOnly, Func<VmmClient, string, Task<T>> running, Func<Qcow2BlockDevice, T> stopped)
    {
        var vm = Get(vmId);
        using var op = Operation(vm);
        vm = Get(vm.Id);
        var paths = PathsOf(vm);
        string file;
        string format;
        List<(string Path, string Format)> chain;
        if (disk == VmmLauncher.DiskId && vm.DiskMib > 0)
        {
            (file, format, chain) = (paths.DiskOf(vm), vm.DiskFormat ?? "raw", ChainOf(vm));
        }
        else if (Enumerable.Range(0, vm.Volumes.Count).FirstOrDefault(i => VmmLauncher.VolumeId(i) == disk, -1) is var index and >= 0
            && _inventory.Volume(vm.Volumes[index]) is { } volume)
        {
            (file, format, chain) = (_volumes.SourceOf(volume), volume.Format, _volumes.ChainOf(volume));
        }
        else
        {
            throw ApiProblem.NotFound("disk", $"{vm.Name}/{disk}");
        }

        if (format != "qcow2")
        {
            throw ApiProblem.BadRequest($"disk {disk} of VM '{vm.Name}' is raw: dirty bitmaps are kept in qcow2 disks.", "disk");
        }

        try
        {
            if (VmStates.HasProcess(vm.State))
            {
                using var client = new VmmClient(paths.ApiSocket);
                return running(client, disk).GetAwaiter().GetResult();
            }

            using var qcow2 = Qcow2BlockDevice.Open(file, readOnly, chain);
            return stopped(qcow2);
        }
        catch (Exception e) when (e is VmmFault or VmmRequestException)
        {
            throw ApiProblem.BadRequest($"VM '{vm.Name}', disk {disk}: {e.Message}", "disk");
        }
        catch (BlockDeviceException e)
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}', disk {disk}: {e.Message}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new ApiProblem(502, "vmm-unreachable", "The VM's VMM did not answer", $"VM '{vm.Name}': {e.Message}");
        }
    }

    public HostInfo Info() => _resources.Describe(_inventory.Vms());

    /// <summary>Reads the VMM's counters within <paramref name="timeout"/>; one that does not answer is a 502 problem.</summary>
    public async Task<Vmm.Api.VmmStatistics> ReadStatisticsAsync(VmRecord vm, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vm);
        using var client = new VmmClient(PathsOf(vm).ApiSocket);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            string json = await client.StatisticsAsync(limit.Token).ConfigureAwait(false);
            return JsonSerializer.Deserialize(json, VmmJsonContext.Default.VmmStatistics)
                ?? throw new JsonException("the answer is null");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException && !cancellationToken.IsCancellationRequested)
        {
            string why = e is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0.#} s" : e.Message;
            throw new ApiProblem(502, "vmm-unreachable", "The VM's VMM did not answer", $"VM '{vm.Name}': {why}");
        }
    }

    private void CallVmm(VmRecord vm, Func<VmmClient, Task> call)
    {
        using var client = new VmmClient(PathsOf(vm).ApiSocket);
        try
        {
            call(client).GetAwaiter().GetResult();
        }
        catch (VmmRequestException e)
        {
            throw ApiProblem.BadRequest($"VM '{vm.Name}': {e.Message}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new ApiProblem(502, "vmm-unreachable", "The VM's VMM did not answer", $"VM '{vm.Name}': {e.Message}");
        }
    }

    private static void CheckCap(int? cap)
    {
        if (cap is < 1 or > 100)
        {
            throw ApiProblem.BadRequest($"cpu_cap_percent {cap}: must be 1 to 100 (percent of one host core per vCPU).", "cpu_cap_percent");
        }
    }

    private static void CheckLimits(RateLimit? limit, string field)
    {
        if (limit is { BandwidthBytesPerS: < 1 } or { OpsPerS: < 1 })
        {
            throw ApiProblem.BadRequest($"{field}: rates must be positive (leave a rate out for no limit).", field);
        }
    }

    /// <summary>One operation per VM: a second one at the same time is a 409.</summary>
    private OperationScope Operation(VmRecord vm)
    {
        var gate = _operations.GetOrAdd(vm.Id, _ => new SemaphoreSlim(1, 1));
        if (!gate.Wait(0))
        {
            throw ApiProblem.Conflict($"Another operation on VM '{vm.Name}' is in progress; try again when it has finished.");
        }

        return new OperationScope(gate);
    }

    /// <summary>The monitor: every VM that should have a process is checked; a dead one is handled.</summary>
    private void Monitor()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        try
        {
            foreach (var vm in _inventory.Vms())
            {
                if (!VmStates.HasProcess(vm.State) || vm.State == VmStates.Starting || vm.Pid is not { } pid || vm.PidStartTicks is not { } ticks
                    || ProcessTable.IsAlive(pid, ticks))
                {
                    continue;
                }

                var gate = _operations.GetOrAdd(vm.Id, _ => new SemaphoreSlim(1, 1));
                if (!gate.Wait(0))
                {
                    continue; // an operation (a stop, a delete) is dealing with it
                }

                try
                {
                    var current = _inventory.Vm(vm.Id);
                    if (current is not null && current.Pid == pid && VmStates.HasProcess(current.State))
                    {
                        HandleExit(current);
                    }
                }
                finally
                {
                    gate.Release();
                }
            }
        }
#pragma warning disable CA1031 // the monitor must keep running whatever one VM's handling threw
        catch (Exception e)
#pragma warning restore CA1031
        {
            _inventory.AddEvent(null, "error", $"supervisor: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>SIGSYS: how the kernel ends a process its seccomp filter kills.</summary>
    private const int SignalBadSystemCall = 31;

    /// <summary>A VMM ended without being asked to: record why and restart it if the policy says so.</summary>
    private void HandleExit(VmRecord vm)
    {
        // A jailed VMM's parent (unshare) ends a moment after it, with its status: wait for that moment.
        int? code = _children.TryGetValue(vm.Id, out var child) && child.WaitForExit(TimeSpan.FromSeconds(2)) ? SafeExitCode(child) : null;
        var exit = ReadExit(vm) ?? new VmExit("crashed", code, code is { } c && c > 128
            ? c - 128 == SignalBadSystemCall
                ? $"the VMM was killed by its seccomp filter (signal {c - 128}, SIGSYS: it made a system call outside its allowlist)"
                : $"the VMM died (signal {c - 128})"
            : code is { } c2 ? $"the VMM exited with code {c2} without saying why" : "the VMM died (killed, or crashed without a word)", DateTimeOffset.UtcNow);
        bool failure = exit.Reason is not ("poweroff" or "reboot" or "terminated");
        bool restart = exit.Reason == "reboot" && vm.RestartPolicy != RestartPolicies.Never
            || vm.RestartPolicy == RestartPolicies.Always
            || (failure && vm.RestartPolicy == RestartPolicies.OnFailure);
        string what = $"{exit.Reason}: {exit.Message}";
        if (!restart)
        {
            Settle(vm with { LastExit = exit }, failure ? VmStates.Failed : VmStates.Stopped, failure ? "crashed" : "exited",
                $"{what}; not restarted (policy {vm.RestartPolicy})");
            return;
        }

        var now = DateTimeOffset.UtcNow;
        var times = _restarts.GetOrAdd(vm.Id, _ => []);
        times.RemoveAll(t => now - t > TimeSpan.FromSeconds(_settings.RestartWindowS));
        if (times.Count >= _settings.MaxRestarts)
        {
            Settle(vm with { LastExit = exit }, VmStates.Failed, "failed",
                $"{what}; {times.Count} restarts in {_settings.RestartWindowS} s, giving up (start it again to retry)");
            return;
        }

        times.Add(now);
        var settled = Settle(vm with { LastExit = exit }, VmStates.Stopped, failure ? "crashed" : "exited", $"{what}; restarting (policy {vm.RestartPolicy})");
        try
        {
            Launch(settled with { Restarts = vm.Restarts + 1 }, "restarted", $"restarted after {exit.Reason} (restart {vm.Restarts + 1})");
        }
        catch (ApiProblem e)
        {
            var current = _inventory.Vm(vm.Id);
            if (current is not null && current.State == VmStates.Stopped)
            {
                _inventory.PutVm(current with { State = VmStates.Failed }, "failed", $"could not be restarted: {e.Message}");
            }
        }
    }

    /// <summary>The VMM's exit file, if it wrote one for this run.</summary>
    private VmExit? ReadExit(VmRecord vm)
    {
        string file = PathsOf(vm).ExitFile;
        try
        {
            if (!File.Exists(file) || (vm.StartedAt is { } started && File.GetLastWriteTimeUtc(file) < started.UtcDateTime.AddSeconds(-1)))
            {
                return null;
            }

            // The VMM's own directory (a jailed VMM owns it): read no link, no FIFO, and no more than an exit report takes.
            using var stream = OwnerOnly.OpenRegularNoFollow(file);
            if (stream is null || stream.Length > 64 << 10)
            {
                return null;
            }

            var report = JsonSerializer.Deserialize(stream, VmmJsonContext.Default.VmmExitReport);
            return report is null ? null : new VmExit(report.Reason, report.ExitCode, report.Message, report.At);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Tail(string file)
    {
        try
        {
            var lines = File.ReadAllLines(file);
            return lines.Length == 0 ? "(its log is empty)" : string.Join(" | ", lines.TakeLast(3));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>Stops watching; the VMMs keep running (a restarted daemon adopts them).</summary>
    public void Dispose()
    {
        _stopping.Cancel();
        _monitor.Dispose();
        foreach (var p in _children.Values)
        {
            p.Dispose();
        }

        _stopping.Dispose();
    }

    private readonly struct OperationScope(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }
}
