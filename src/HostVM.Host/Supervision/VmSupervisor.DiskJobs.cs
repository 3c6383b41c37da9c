using System.Collections.Concurrent;
using HostVM.Host.Api;
using HostVM.Host.Images;
using HostVM.Host.Inventory;
using HostVM.Storage;
using HostVM.Storage.Qcow2;
using HostVM.Vmm;

namespace HostVM.Host.Supervision;

/// <summary>
/// Live block jobs on a VM's own qcow2 disk. The daemon owns the chain's names and the record of them; a running VM's VMM
/// moves its drive between the files (<c>PUT /hostvm/drives/disk/job</c>), a stopped VM's job is copied here. At every
/// moment the record and the files read as the guest's disk, whatever dies when:
/// <list type="bullet">
/// <item><b>snapshot</b> is <see cref="Freeze"/> (the overlay becomes a layer under a new, empty overlay: the record first,
/// then the rename), then the VMM opens the new overlay over the file it has open;</item>
/// <item><b>commit</b> needs a layer below the overlay that is this VM's alone (one name: not a clone's, not the image's
/// base). The VMM (or the daemon) copies the overlay into it while mirroring guest writes; once the two read alike the
/// layer is put in the overlay's place the way a freeze puts a new overlay there (<see cref="SwitchToLayer"/>);</item>
/// <item><b>stream</b> copies what the base and layers hold into the overlay, then drops its backing file (one header
/// write); the record then has no chain, and the files go.</item>
/// </list>
/// </summary>
public sealed partial class VmSupervisor
{
    /// <summary>Snapshots stop at this many layers: each read goes down the chain, and qcow2 chains stop at 64.</summary>
    public const int MaxDiskLayers = 32;

    private static readonly TimeSpan JobPoll = TimeSpan.FromMilliseconds(200);

    private readonly ConcurrentDictionary<string, DiskJob> _diskJobs = new();

    /// <summary>The last block job on the VM's disk.</summary>
    public DiskJobView DiskJobOf(string vmId, string disk)
    {
        var vm = Get(vmId);
        RequireJobDisk(vm, disk);
        return _diskJobs.TryGetValue(vm.Id, out var job) ? job.View() : throw new ApiProblem(404, "not-found", "No block job", $"No block job has run on disk {disk} of VM '{vm.Name}' since the daemon started.");
    }

    public DiskJobView StartDiskJob(string vmId, string disk, StartDiskJobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string type = request.Type is "snapshot" or "commit" or "stream" ? request.Type : throw ApiProblem.BadRequest($"type '{request.Type}': must be snapshot, commit or stream.", "type");
        var vm = Get(vmId);
        RequireJobDisk(vm, disk);
        var op = Operation(vm);
        bool handedOver = false;
        try
        {
            vm = Get(vm.Id);
            if (_diskJobs.TryGetValue(vm.Id, out var last) && last.Busy)
            {
                throw ApiProblem.Conflict($"A {last.Type} job is running on disk {disk} of VM '{vm.Name}': wait for it or cancel it.");
            }

            var paths = PathsOf(vm);
            bool running = VmStates.HasProcess(vm.State);
            var job = new DiskJob(vm.Id, vm.Name, disk, type, VirtualSize(paths.Overlay));
            switch (type)
            {
                case "snapshot":
                    _diskJobs[vm.Id] = job;
                    Snapshot(vm, job, running);
                    return job.View();
                case "commit":
                    RequireCommitTarget(vm);
                    break;
                default:
                    if (vm.DiskStandalone)
                    {
                        throw ApiProblem.Conflict($"Disk {disk} of VM '{vm.Name}' has no backing file (a stream made it stand alone): there is nothing to stream.");
                    }

                    break;
            }

            _diskJobs[vm.Id] = job;
            _inventory.AddEvent(vm.Name, "disk-job", $"disk {disk}: {type} started{(running ? " (live)" : string.Empty)}", vm.Project);
            if (running)
            {
                if (type == "commit" && vm.JailId is { } id)
                {
                    VmmJail.GiveDisk(paths.Layer(vm.DiskLayers[^1]), id); // the VMM writes into it
                }

                CallVmm(vm, client => client.RunDriveJobAsync(disk, type));
                _ = Task.Run(() => WatchAsync(vm, job));
            }
            else
            {
                // The VM may not start while the daemon copies its files: the job keeps the VM's operation until it ends.
                handedOver = true;
                _ = Task.Run(() => CopyOffline(vm, job, op));
            }

            return job.View();
        }
        finally
        {
            if (!handedOver)
            {
                op.Dispose();
            }
        }
    }

    public DiskJobView CancelDiskJob(string vmId, string disk)
    {
        var vm = Get(vmId);
        RequireJobDisk(vm, disk);
        if (!_diskJobs.TryGetValue(vm.Id, out var job) || !job.Busy)
        {
            throw ApiProblem.Conflict($"No block job is running on disk {disk} of VM '{vm.Name}'.");
        }

        job.Cancel.Cancel();
        if (VmStates.HasProcess(Get(vm.Id).State))
        {
            CallVmm(vm, client => client.RunDriveJobAsync(disk, "cancel"));
        }

        return job.View();
    }

    private static void RequireJobDisk(VmRecord vm, string disk)
    {
        if (disk != VmmLauncher.DiskId || vm.DiskMib <= 0)
        {
            throw Enumerable.Range(0, vm.Volumes.Count).Any(i => VmmLauncher.VolumeId(i) == disk)
                ? ApiProblem.Conflict($"Disk {disk} of VM '{vm.Name}' is a volume: block jobs run on the VM's own disk ({VmmLauncher.DiskId}).")
                : ApiProblem.NotFound("disk", $"{vm.Name}/{disk}");
        }

        if (vm.DiskFormat != "qcow2")
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}' has a raw disk (made before overlays): block jobs need a qcow2 chain.");
        }
    }

    /// <summary>The layer a commit writes into must be this VM's alone: one name, recorded, not the image's shared base.</summary>
    private void RequireCommitTarget(VmRecord vm)
    {
        if (vm.DiskLayers.Count == 0)
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}': the overlay's backing file is {(vm.DiskStandalone ? "none" : "the image's base, which other VMs share")}: there is no layer of its own to commit into (take a snapshot first).");
        }

        string layer = PathsOf(vm).Layer(vm.DiskLayers[^1]);
        if (FileSpace.LinkCount(layer) != 1)
        {
            throw ApiProblem.Conflict($"VM '{vm.Name}': the layer below its overlay ({vm.DiskLayers[^1]}) is shared with a clone: committing would change the clone's disk.");
        }
    }

    private void Snapshot(VmRecord vm, DiskJob job, bool running)
    {
        if (vm.DiskLayers.Count >= MaxDiskLayers)
        {
            job.Finish("failed", "too many layers");
            throw ApiProblem.Conflict($"VM '{vm.Name}' has {vm.DiskLayers.Count} layers, the most it may: commit or stream some first.");
        }

        vm = Freeze(vm, running);
        job.Layer = vm.DiskLayers[^1];
        if (running)
        {
            var paths = PathsOf(vm);
            if (vm.JailId is { } id)
            {
                VmmJail.GiveDisk(paths.Overlay, id);
            }

            try
            {
                CallVmm(vm, client => client.RunDriveJobAsync(VmmLauncher.DiskId, "reopen"));
            }
            catch (ApiProblem e)
            {
                // The record and the files agree (an empty overlay on the layer); the VMM writes the layer until it restarts.
                job.Finish("failed", e.Message);
                _inventory.AddEvent(vm.Name, "disk-job", $"disk {VmmLauncher.DiskId}: snapshot failed: the running VM keeps writing {job.Layer} until it restarts: {e.Message}", vm.Project);
                throw;
            }
        }

        job.Finish("completed");
        _inventory.AddEvent(vm.Name, "disk-job", $"disk {VmmLauncher.DiskId}: snapshot completed: the disk so far is the read-only layer {job.Layer}", vm.Project);
    }

    /// <summary>Follows a running VM's job through its VMM: progress, then the switch a finished job needs in the record.</summary>
    private async Task WatchAsync(VmRecord vm, DiskJob job)
    {
        int lastQuarter = 0;
        try
        {
            using var client = new VmmClient(PathsOf(vm).ApiSocket);
            while (true)
            {
                await Task.Delay(JobPoll).ConfigureAwait(false);
                var info = await client.DriveJobAsync(VmmLauncher.DiskId).ConfigureAwait(false);
                job.Progress(info.DoneBytes);
                int quarter = info.TotalBytes > 0 ? (int)(info.DoneBytes * 4 / info.TotalBytes) : 0;
                if (quarter > lastQuarter && quarter < 4)
                {
                    lastQuarter = quarter;
                    _inventory.AddEvent(vm.Name, "disk-job", $"disk {VmmLauncher.DiskId}: {job.Type} {quarter * 25}% done", vm.Project);
                }

                switch (info.State)
                {
                    case "ready":
                        // The layer alone reads what the overlay does (writes go to both): it takes the overlay's place.
                        SwitchToLayer(vm.Id, wait: true);
                        await client.RunDriveJobAsync(VmmLauncher.DiskId, "complete").ConfigureAwait(false);
                        End(vm, job, "completed");
                        return;
                    case "completed":
                        RecordStandalone(vm.Id, wait: true);
                        End(vm, job, "completed");
                        return;
                    case "cancelled" or "failed":
                        End(vm, job, info.State, info.Error);
                        return;
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or VmmRequestException or TaskCanceledException or ApiProblem)
        {
            End(vm, job, "failed", $"the VMM stopped answering (the VM stopped?): {e.Message}");
        }
    }

    /// <summary>A stopped VM's job, copied by the daemon with the VM's operation held (it cannot start meanwhile).</summary>
    private void CopyOffline(VmRecord vm, DiskJob job, IDisposable op)
    {
        using (op)
        {
            var paths = PathsOf(vm);
            var chain = ChainOf(vm);
            var progress = new Progress<long>(job.Progress);
            try
            {
                if (job.Type == "commit")
                {
                    using (var target = Qcow2BlockDevice.Open(chain[0].Path, readOnly: false, chain[1..]))
                    {
                        var top = Qcow2BlockDevice.OpenOver(paths.Overlay, target);
                        try
                        {
                            LayerCopy.Commit(top, target, a => a(), progress, job.Cancel.Token);
                            target.CopyBitmapsFrom(top);
                        }
                        finally
                        {
                            top.DetachBacking();
                            top.Dispose();
                        }
                    }

                    SwitchToLayer(vm.Id, wait: false);
                }
                else
                {
                    using (var top = Qcow2BlockDevice.Open(paths.Overlay, readOnly: false, chain))
                    {
                        LayerCopy.Stream(top, a => a(), progress, job.Cancel.Token);
                        top.DropBacking();
                    }

                    RecordStandalone(vm.Id, wait: false);
                }

                End(vm, job, "completed");
            }
            catch (OperationCanceledException)
            {
                End(vm, job, "cancelled");
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException)
            {
                End(vm, job, "failed", e.Message);
            }
        }
    }

    private void End(VmRecord vm, DiskJob job, string state, string? error = null)
    {
        if (job.Finish(state, error))
        {
            _inventory.AddEvent(vm.Name, "disk-job", $"disk {VmmLauncher.DiskId}: {job.Type} {state}{(error is null ? string.Empty : $": {error}")}", vm.Project);
        }
    }

    /// <summary>
    /// A commit's end: the layer below the overlay, which now reads alone what the overlay does, takes the overlay's name.
    /// In the order <see cref="FinishFreezes"/> can finish or undo: a second name for the layer (disk.next.qcow2), the
    /// record without the layer, the rename over the overlay, the layer's old name removed.
    /// </summary>
    private void SwitchToLayer(string vmId, bool wait)
    {
        using var op = wait ? OperationWaiting(Get(vmId)) : (IDisposable?)null;
        var vm = Get(vmId);
        var paths = PathsOf(vm);
        string layer = vm.DiskLayers[^1];
        File.Delete(paths.NextOverlay);
        FileLink.Link(paths.Layer(layer), paths.NextOverlay);
        FileSync.Entries(paths.Disks);
        vm = vm with { DiskLayers = vm.DiskLayers.Take(vm.DiskLayers.Count - 1).ToList() };
        _inventory.PutVm(vm, "disk-committed", $"disk {VmmLauncher.DiskId}: its overlay was committed into {layer}, which is its overlay now");
        File.Move(paths.NextOverlay, paths.Overlay, overwrite: true);
        File.Delete(paths.Layer(layer));
        FileSync.Entries(paths.Disks);
    }

    /// <summary>A stream's end: the overlay names no backing file, so the record has no chain and the base and layers go.</summary>
    private void RecordStandalone(string vmId, bool wait)
    {
        using var op = wait ? OperationWaiting(Get(vmId)) : (IDisposable?)null;
        var vm = Get(vmId);
        var paths = PathsOf(vm);
        var files = ChainOf(vm).Select(c => c.Path).ToList();
        _inventory.PutVm(vm with { DiskLayers = [], DiskStandalone = true }, "disk-streamed", $"disk {VmmLauncher.DiskId}: its base and layers were streamed into its overlay, which stands alone now");
        foreach (string file in files)
        {
            File.Delete(file);
        }

        FileSync.Entries(paths.Disks);
    }

    /// <summary>The VM's operation, waited for (a job's switch must not fail because a bitmap call is in progress).</summary>
    private IDisposable OperationWaiting(VmRecord vm)
    {
        var gate = _operations.GetOrAdd(vm.Id, _ => new SemaphoreSlim(1, 1));
        if (!gate.Wait(TimeSpan.FromMinutes(1)))
        {
            throw ApiProblem.Conflict($"Another operation on VM '{vm.Name}' held it for a minute; the job's switch did not happen.");
        }

        return new OperationScope(gate);
    }
}
