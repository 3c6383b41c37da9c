using HostVM.Storage;
using HostVM.Storage.Qcow2;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// One live block job on a running qcow2 drive (<see cref="DriveJobRequest"/>): a commit or a stream copies on a thread of
/// its own, a cluster at a time under the drive's gate (<see cref="LayerCopy"/>), so the guest goes on reading and writing
/// meanwhile. Whatever moment the VMM dies at, the files read as the guest's disk: the daemon's record decides which file
/// is the drive, and this only ever adds to a layer bytes that the layers above it hide or already show.
/// </summary>
public sealed class DriveJob
{
    private readonly SwitchableBlockDevice _disk;
    private readonly string _path;
    private readonly string _identifier;
    private readonly VmmLog _log;
    private readonly CancellationTokenSource _cancel = new();
    private readonly Lock _lock = new();
    private string _state = "running";
    private string? _error;
    private long _done;
    private Qcow2BlockDevice? _top;
    private Qcow2BlockDevice? _target;

    private DriveJob(string type, SwitchableBlockDevice disk, string path, string identifier, VmmLog log)
    {
        Type = type;
        _disk = disk;
        _path = path;
        _identifier = identifier;
        _log = log;
        Total = disk.Length;
    }

    public string Type { get; }

    public long Total { get; }

    /// <summary>Still copying, or a commit waiting for complete: the drive takes no other job meanwhile.</summary>
    public bool Busy
    {
        get
        {
            lock (_lock)
            {
                return _state is "running" or "ready";
            }
        }
    }

    public DriveJobInfo Info()
    {
        lock (_lock)
        {
            return new DriveJobInfo(Type, _state, Interlocked.Read(ref _done), Total, _error);
        }
    }

    /// <summary>
    /// The daemon put a new, empty overlay at the drive's path, naming the image the drive has open (now under another
    /// name): it is opened over that image (no second opening of a file this process holds), which stays open beneath it
    /// as its backing file, and the bitmaps move up with the writes. If the overlay cannot be opened the drive stays as it
    /// was; nothing is closed before its successor is open.
    /// </summary>
    public static DriveJob Reopen(SwitchableBlockDevice disk, string path, string identifier, VmmLog log)
    {
        ArgumentNullException.ThrowIfNull(disk);
        ArgumentNullException.ThrowIfNull(log);
        var job = new DriveJob("reopen", disk, path, identifier, log);
        disk.Exclusive(() =>
        {
            var old = Qcow2Of(disk.Current);
            old.Flush();
            Qcow2BlockDevice next;
            try
            {
                next = Qcow2BlockDevice.OpenOver(path, old, identifier);
            }
            catch (BlockDeviceException e)
            {
                throw new VmmFault($"the new overlay cannot be opened: {e.Message}");
            }

            next.CopyBitmapsFrom(old);
            foreach (var bitmap in old.Bitmaps.Where(b => b.Enabled))
            {
                old.SetBitmapEnabled(bitmap.Name, enabled: false); // what it tracked stays in the layer, frozen with it
            }

            disk.Replace(next);
        });
        job.Finish("completed", null);
        log.Info($"drive {identifier}: reopened on a new overlay");
        return job;
    }

    /// <summary>Starts a commit (the active layer into its backing file) or a stream (the backing chain into the active layer).</summary>
    public static DriveJob Start(string type, SwitchableBlockDevice disk, string path, string identifier, VmmLog log)
    {
        ArgumentNullException.ThrowIfNull(disk);
        var job = new DriveJob(type, disk, path, identifier, log);
        disk.Exclusive(() =>
        {
            var top = Qcow2Of(disk.Current);
            if (top.Backing is null)
            {
                throw new VmmFault($"drive {identifier}: its image has no backing file to {type} {(type == "commit" ? "into" : "from")}.");
            }

            if (type == "commit")
            {
                job.PrepareCommit(top);
            }
            else
            {
                job._top = top;
            }
        });

        var thread = new Thread(job.Run) { IsBackground = true, Name = $"{type} {identifier}" };
        thread.Start();
        log.Info($"drive {identifier}: {type} started");
        return job;
    }

    /// <summary>A commit that is ready: its target becomes the drive (the top layer is closed; the daemon deletes it).</summary>
    public void Complete()
    {
        lock (_lock)
        {
            if (_state != "ready")
            {
                throw new VmmFault($"the {Type} job is {_state}, not ready: only a ready commit completes.");
            }
        }

        _disk.Exclusive(() =>
        {
            var (top, target) = (_top!, _target!);
            target.Flush();
            target.CopyBitmapsFrom(top);
            top.DetachBacking();
            top.Dispose();
            _disk.Replace(target);
        });
        Finish("completed", null);
        _log.Info($"drive {_identifier}: commit completed");
    }

    /// <summary>Stops a running or ready job; the drive keeps reading what it did.</summary>
    public void Cancel()
    {
        if (!Busy)
        {
            throw new VmmFault($"the {Type} job is {Info().State}: there is nothing to cancel.");
        }

        lock (_lock)
        {
            _cancel.Cancel();
            if (_state == "ready")
            {
                _disk.Exclusive(() => _disk.Replace(_top!)); // mirroring stops; the target stays open beneath the top, unwritten
                _state = "cancelled";
            }
        }
    }

    private static Qcow2BlockDevice Qcow2Of(IBlockDevice device) =>
        device as Qcow2BlockDevice ?? throw new VmmFault("block jobs run on qcow2 drives; this drive is not one.");

    /// <summary>
    /// The backing file must be open for writing: if it is not already (it is when this VMM made the overlay above it),
    /// the top is closed and both opened again, the backing file for writing and the top over it. Any failure puts the
    /// drive back as it was.
    /// </summary>
    private void PrepareCommit(Qcow2BlockDevice top)
    {
        if (top.Backing is Qcow2BlockDevice { ReadOnly: false } writable)
        {
            (_top, _target) = (top, writable);
        }
        else
        {
            string? name = top.Header.BackingFile;
            string target = Path.GetFullPath(name!, Path.GetDirectoryName(Path.GetFullPath(_path))!);
            if (top.Backing is not Qcow2BlockDevice)
            {
                throw new VmmFault($"drive {_identifier}: its backing file '{name}' is not a qcow2 image; a commit writes only into qcow2 layers.");
            }

            top.Flush();
            top.Dispose();
            Qcow2BlockDevice? below = null;
            try
            {
                below = Qcow2BlockDevice.Open(target, readOnly: false, identifier: _identifier);
                _top = Qcow2BlockDevice.OpenOver(_path, below, _identifier);
                _target = below;
            }
            catch (BlockDeviceException e)
            {
                below?.Dispose();
                _disk.Replace(DiskImage.Open(_path, readOnly: false, "qcow2", _identifier));
                throw new VmmFault($"drive {_identifier}: cannot open '{name}' for writing: {e.Message}");
            }
        }

        _disk.Replace(_top, mirror: _target);
    }

    private void Run()
    {
        var progress = new Progress(this);
        try
        {
            if (Type == "commit")
            {
                LayerCopy.Commit(_top!, _target!, _disk.Exclusive, progress, _cancel.Token);
                lock (_lock)
                {
                    // A cancel that came after the last cluster still wins (it checks the state under the same lock).
                    _cancel.Token.ThrowIfCancellationRequested();
                    _state = "ready";
                }

                _log.Info($"drive {_identifier}: commit ready");
                return;
            }

            LayerCopy.Stream(_top!, _disk.Exclusive, progress, _cancel.Token);
            _disk.Exclusive(_top!.DropBacking);
            Finish("completed", null);
            _log.Info($"drive {_identifier}: stream completed; the image stands alone");
        }
        catch (OperationCanceledException)
        {
            if (Type == "commit")
            {
                _disk.Exclusive(() => _disk.Replace(_top!));
            }

            Finish("cancelled", null);
            _log.Info($"drive {_identifier}: {Type} cancelled");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or ArgumentException)
        {
            // The disk changed under the job (the VM ended) or an I/O error: the files read as before; the daemon says why.
            Finish("failed", e.Message);
            _log.Warning($"drive {_identifier}: {Type} failed: {e.Message}");
        }
    }

    private void Finish(string state, string? error)
    {
        lock (_lock)
        {
            _state = state;
            _error = error;
            if (state == "completed")
            {
                Interlocked.Exchange(ref _done, Total);
            }
        }
    }

    private sealed class Progress(DriveJob job) : IProgress<long>
    {
        public void Report(long value) => Interlocked.Exchange(ref job._done, value);
    }
}
