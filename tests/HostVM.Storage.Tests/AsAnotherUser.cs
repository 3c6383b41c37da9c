using System.Runtime.InteropServices;

namespace HostVM.Storage.Tests;

/// <summary>
/// Runs a file-system check as an unprivileged user even when the tests run as root, as they do in
/// CI: on a thread of its own, the filesystem user id is set to <c>nobody</c>. Linux keeps that id
/// per thread and, moving it away from 0, clears the thread's file capabilities
/// (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so that thread sees file modes as any user does. No
/// other thread of the test process is touched.
/// </summary>
internal static partial class AsAnotherUser
{
    private const int Nobody = 65534;

    public static T Run<T>(Func<T> body)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return body();
        }

        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            SetFsUid(Nobody);
            try
            {
                if (SetFsUid(-1) != Nobody)
                {
                    throw new InvalidOperationException("setfsuid(nobody) did not take effect on this thread");
                }

                result = body();
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                SetFsUid(0);
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

    /// <summary>setfsuid(2): returns the previous filesystem user id; -1 only asks.</summary>
    [LibraryImport("libc", EntryPoint = "setfsuid")]
    private static partial int SetFsUid(int fsuid);
}
