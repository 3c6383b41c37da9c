using System.Runtime.InteropServices;

namespace HostVM.Networking.Tests.Tap;

/// <summary>
/// Runs code without CAP_NET_ADMIN even when the tests run as root, as they do in CI: on a thread
/// of its own, the capability is taken out of the thread's effective set (capset(2) acts on the
/// calling thread only), so creating a TAP there fails as it does for an ordinary user. No other
/// thread of the test process is touched; the thread puts the capability back before it ends.
/// </summary>
internal static partial class WithoutNetAdmin
{
    private const uint CapabilityVersion3 = 0x20080522;
    private const int NetAdmin = 12;

    public static T Run<T>(Func<T> body)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            var header = new CapHeader { Version = CapabilityVersion3, Pid = 0 };
            var sets = new CapData[2];
            bool dropped = false;
            try
            {
                if (CapGet(ref header, sets) != 0)
                {
                    throw new InvalidOperationException("capget: " + Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
                }

                var without = (CapData[])sets.Clone();
                without[0].Effective &= ~(1u << NetAdmin);
                if (CapSet(ref header, without) != 0)
                {
                    throw new InvalidOperationException("capset: " + Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
                }

                dropped = true;
                result = body();
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                if (dropped)
                {
                    _ = CapSet(ref header, sets);
                }
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }

        return result!;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int CapGet(ref CapHeader header, [Out] CapData[] data);

    [LibraryImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static partial int CapSet(ref CapHeader header, CapData[] data);
}
