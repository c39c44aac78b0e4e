# Copyright 2026 The superglue_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ament_python package: the torch core, the ROS 2 nodes and the command-line tools."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'superglue_ros'

setup(
    name=package_name,
    version='0.3.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['weights/*.pth', 'weights/*.md', 'data/README.md', 'ros/*.xml',
                                 'data/tum_freiburg/*.jpg', 'data/tum_freiburg/*.txt']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'), glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    # ONNX export and the onnxruntime backend (pip install superglue_ros[onnx]).
    extras_require={'onnx': ['onnx>=1.16', 'onnxruntime>=1.18']},
    zip_safe=False,
    maintainer='superglue_ros maintainers',
    maintainer_email='maintainers@superglue-ros.dev',
    description='Learned feature-matching middle-end (SuperGlue) for ROS 2 SLAM.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'superglue-demo = superglue_ros.tools.demo:main',
            'superglue-replay = superglue_ros.tools.replay:main',
            'superglue-make-demo-bag = superglue_ros.tools.demo_bag:main',
            'superglue-make-bag = superglue_ros.tools.make_bag:main',
            # Through the torch check: an old torch can fail while the node module imports.
            'matcher_node = superglue_ros.torch_version:matcher_main',
            'managed_matcher_node = superglue_ros.torch_version:managed_matcher_main',
            'frontend_node = superglue_ros.nodes.frontend_node:main',
            # An example consumer of the correspondences (needs gtsam), not the product.
            'reference_backend_node = superglue_ros.nodes.reference_backend_node:main',
            'superglue-train = superglue_ros.training.train:main',
            'superglue-eval = superglue_ros.tools.eval:main',
            'superglue-bench = superglue_ros.tools.bench:main',
            'superglue-export = superglue_ros.tools.export:main',
        ],
    },
)
